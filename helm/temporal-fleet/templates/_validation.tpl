{{- /* Checks of values that the schema cannot express: each fails the render with one line naming the value. */ -}}
{{/*
Checks of one autoscaling block the schema cannot express; fails with a message starting with
`who` ("queue orders", "queue orders, build b2"). Arguments: dict "who" ... "a" autoscaling
"resources" resources.
*/}}
{{- define "temporal-fleet.checkAutoscaling" -}}
{{- $who := .who -}}
{{- $a := .a -}}
{{- if ne $a.kind "none" -}}
{{- if gt (int $a.minReplicas) (int $a.maxReplicas) -}}
{{- fail (printf "%s: autoscaling.minReplicas (%d) is above autoscaling.maxReplicas (%d)" $who (int $a.minReplicas) (int $a.maxReplicas)) -}}
{{- end -}}
{{- end -}}
{{- if eq $a.kind "hpa" -}}
{{- if lt (int $a.minReplicas) 1 -}}
{{- fail (printf "%s: an HPA needs autoscaling.minReplicas >= 1 (scaling to zero needs autoscaling.kind: keda)" $who) -}}
{{- end -}}
{{- if not (or $a.hpa.targetCPUUtilizationPercentage $a.hpa.targetMemoryUtilizationPercentage $a.hpa.targetSlotUtilisationPercentage) -}}
{{- fail (printf "%s: autoscaling.kind hpa needs autoscaling.hpa.targetCPUUtilizationPercentage, targetMemoryUtilizationPercentage or targetSlotUtilisationPercentage" $who) -}}
{{- end -}}
{{- if and $a.hpa.targetCPUUtilizationPercentage (not (dig "requests" "cpu" "" .resources)) -}}
{{- fail (printf "%s: an HPA on CPU needs resources.requests.cpu (utilization is relative to the request)" $who) -}}
{{- end -}}
{{- if and $a.hpa.targetMemoryUtilizationPercentage (not (dig "requests" "memory" "" .resources)) -}}
{{- fail (printf "%s: an HPA on memory needs resources.requests.memory (utilization is relative to the request)" $who) -}}
{{- end -}}
{{- end -}}
{{- end }}

{{/*
A queue that keeps state and has no database keeps it in each pod's own SQLite file (lost with
the pod): fails unless the queue runs one pod at most, i.e. its units (the queue, or each live
build) run one fixed replica between them, none autoscaled. Arguments: dict "who" ... "units"
units.
*/}}
{{- define "temporal-fleet.checkEmbeddedState" -}}
{{- $replicas := 0 -}}
{{- $scaled := "" -}}
{{- range $u := .units -}}
{{- if ne $u.autoscaling.kind "none" -}}
{{- $scaled = $u.autoscaling.kind -}}
{{- else -}}
{{- $replicas = add $replicas (int $u.replicas) -}}
{{- end -}}
{{- end -}}
{{- $what := "" -}}
{{- if $scaled -}}
{{- $what = printf "autoscales (autoscaling.kind %s)" $scaled -}}
{{- else if gt (int $replicas) 1 -}}
{{- $what = printf "runs %d replicas" (int $replicas) -}}
{{- if gt (len .units) 1 -}}
{{- $what = printf "%s (over %d builds)" $what (len .units) -}}
{{- end -}}
{{- end -}}
{{- if $what -}}
{{- fail (printf "%s keeps state and %s but database.existingSecret is not set: without a database each pod keeps its idempotency keys, ledgers and outboxes in its own SQLite file, lost with the pod and unseen by the others. Create a Secret with the PostgreSQL URL and set database.existingSecret (and database.secretKey, default url), or run the queue with one replica and autoscaling.kind none" .who $what) -}}
{{- end -}}
{{- end }}

{{/*
Checks of a queue run by temporal-worker-controller. Arguments: dict "root" $ "q" queue.
*/}}
{{- define "temporal-fleet.checkController" -}}
{{- $q := .q -}}
{{- $who := printf "queue %s" $q.name -}}
{{- $c := $q.rollout.controller -}}
{{- if not (kindIs "invalid" $q.rollout.rampPercentage) -}}
{{- fail (printf "%s: rollout.rampPercentage drives the chart's promotion hook, which workerController.enabled replaces: ramp with rollout.controller.strategy Progressive and rollout.controller.steps" $who) -}}
{{- end -}}
{{- if and (eq $c.strategy "Progressive") (not $c.steps) -}}
{{- fail (printf "%s: rollout.controller.strategy Progressive needs rollout.controller.steps ([{rampPercentage, pauseDuration}, ...])" $who) -}}
{{- end -}}
{{- $last := 0 -}}
{{- range $step := $c.steps -}}
{{- if le (int $step.rampPercentage) $last -}}
{{- fail (printf "%s: rollout.controller.steps must ramp up: %d%% follows %d%%" $who (int $step.rampPercentage) $last) -}}
{{- end -}}
{{- $last = int $step.rampPercentage -}}
{{- end -}}
{{- $u := $q.controllerUnit -}}
{{- if and (eq $u.autoscaling.kind "keda") (not $u.autoscaling.keda.versionBacklog) -}}
{{- fail (printf "%s: autoscaling.keda.versionBacklog false cannot be used with workerController.enabled (one ScaledObject template serves every version: each must count only its own backlog)" $who) -}}
{{- end -}}
{{- end }}
