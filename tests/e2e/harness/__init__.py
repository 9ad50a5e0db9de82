"""What every phase of the end-to-end test (tests/e2e/run_e2e.py) stands on.

    commands  running commands and waiting for conditions; Failed, say, the run's paths
    report    the checks that held and each phase's duration, printed at the end
    engine    Docker and Compose installed, dockerd started when none answers, the base image
    stack     the e2e's compose project: its environment, the commands make runs, teardown
    checks    checks several phases repeat: every worker healthy, and scraped by Prometheus
    workload  what the phases start: this run's id, orders and their confirmation
    history   reading workflow histories and pending activities (temporal CLI, JSON)
    sources   a copy of the sources with OrderWorkflow changed, for make deploy to build

Not pytest modules: system python3 runs them, the standard library only.
"""
