"""The compose stack of this repository, one module a concern, as `make up | down | scale |
images` (scripts/fleet_compose.py), `make deploy` (scripts/compose_deploy.py) and the e2e test
(tests/e2e/run_e2e.py) reach it.

    process     running commands in the repository; Failed, the error every module raises
    containers  what a `docker inspect` document or a compose service says: labels, roles, health
    stack       Stack: the project, its files, the compose command, its config and containers
    secrets     the local keyring and codec token the stack mounts as compose secrets
    images      the base image (and its local stand-in), building the images, their sizes
    health      waiting until every container is healthy
    lifecycle   up, down (with the engine's stale networks), scale
    urls        where the running stack answers

Python's standard library only: `make up` runs it with the system's python3, no virtual
environment.
"""
