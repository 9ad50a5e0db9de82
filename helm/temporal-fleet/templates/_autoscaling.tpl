{{/*
Autoscaling: what each queue's HPA or KEDA ScaledObject does follows its shape
(queues.<name>.shape, from the registry), and what KEDA can do follows its version
(autoscaling.keda.version). The KEDA facts these helpers rely on (KEDA's Temporal scaler,
pkg/scalers/temporal_scaler.go, and its CHANGELOG):

- the Temporal scaler exists since 2.17.0; endpoint, namespace, taskQueue, targetQueueSize,
  activationTargetQueueSize, queueTypes and the auth parameters apiKey, cert, key, ca too;
- it connects with TLS only given cert and key (mTLS: then `ca` is trusted too) or apiKey.
  `ca` alone, or nothing, is plaintext, in every release (2.17 to 2.20, and 2.21's source);
  `unsafeSsl` only relaxes the verification of TLS that is already on;
- with an apiKey alone, 2.17.0 and 2.17.1 connect without TLS (2.17.1's fix is overwritten a
  few lines later), 2.17.2 and 2.18 use TLS with the system CAs, 2.19 adds the CA files of the
  operator's --ca-dir; `ca` is never read without cert and key;
- tlsServerName: 2.18.0; workerDeploymentName / workerDeploymentBuildId: 2.20.0;
  includeRunningWorkflowCount: 2.21 (unreleased when this was written: KEDA's docs list 2.21
  as unreleased);
- the Prometheus scaler's serverAddress, query, threshold, activationThreshold and
  ignoreNullValues are the same in every supported release.
*/}}

{{/*
The KEDA version of autoscaling.keda.version as MAJOR.MINOR.PATCH ("2.20" is 2.20.0).
*/}}
{{- define "temporal-fleet.kedaVersion" -}}
{{- $v := toString .Values.autoscaling.keda.version -}}
{{- if eq (len (splitList "." $v)) 2 -}}
{{- $v = printf "%s.0" $v -}}
{{- end -}}
{{- $v -}}
{{- end }}

{{/*
"true" if the cluster's KEDA is at least the given version. Arguments: dict "root" $ "min" "2.18.0".
*/}}
{{- define "temporal-fleet.kedaAtLeast" -}}
{{- if semverCompare (printf ">=%s" .min) (include "temporal-fleet.kedaVersion" .root) -}}true{{- end -}}
{{- end }}

{{/*
Whether KEDA's TriggerAuthentication carries credentials: an API key or a client certificate
(the only inputs with which KEDA's Temporal scaler uses TLS).
*/}}
{{- define "temporal-fleet.hasCredentials" -}}
{{- if or .Values.temporal.apiKey.existingSecret .Values.temporal.tls.clientCertSecret -}}true{{- end -}}
{{- end }}

{{/*
KEDA connects to Temporal exactly as the workers do, or rendering fails: the checks of the
release's connection (temporal.*) against what KEDA's Temporal scaler of
autoscaling.keda.version can do. Arguments: dict "root" $ "queues" names of the queues KEDA
scales.
*/}}
{{- define "temporal-fleet.checkKedaConnection" -}}
{{- $root := .root -}}
{{- $t := $root.Values.temporal -}}
{{- $k := $root.Values.autoscaling.keda -}}
{{- $v := include "temporal-fleet.kedaVersion" $root -}}
{{- $who := printf "KEDA (autoscaling.kind keda: queue %s)" (join ", " (.queues | uniq)) -}}
{{- $mtls := $t.tls.clientCertSecret -}}
{{- $apiKey := $t.apiKey.existingSecret -}}
{{- if and (or $t.tls.enabled $t.tls.caSecret) (not $mtls) (not $apiKey) -}}
{{- fail (printf "%s: the workers connect with TLS without a client certificate or API key (temporal.tls.enabled or temporal.tls.caSecret), but KEDA's Temporal scaler turns TLS on only with a client certificate and key or an API key: with a CA alone (its `ca` parameter is read only next to cert and key; unsafeSsl only relaxes TLS already on) it would connect in plaintext, in every KEDA release. Give the workers an mTLS client certificate (temporal.tls.clientCertSecret) or an API key (temporal.apiKey.existingSecret), or scale these queues with autoscaling.kind hpa or none" $who) -}}
{{- end -}}
{{- if and $apiKey (not $mtls) -}}
{{- if semverCompare "<2.17.2" $v -}}
{{- fail (printf "%s: KEDA %s sends the API key without TLS (the Temporal scaler's TLS for API keys works from 2.17.2 and 2.18.0; 2.17.1's fix does not take effect): set autoscaling.keda.version to the cluster's exact version (2.17.2 or later), or upgrade KEDA" $who $v) -}}
{{- end -}}
{{- if $t.tls.caSecret -}}
{{- if semverCompare "<2.19.0" $v -}}
{{- fail (printf "%s: with an API key and no client certificate, KEDA %s trusts only the system CAs (its `ca` parameter is read only next to cert and key), so it cannot verify the server certificate of temporal.tls.caSecret: upgrade KEDA to 2.19 or later (its operator's --ca-dir, /custom/ca, is trusted too) and set autoscaling.keda.operatorTrustsServerCA, or give the workers a client certificate" $who $v) -}}
{{- else if not $k.operatorTrustsServerCA -}}
{{- fail (printf "%s: with an API key and no client certificate, KEDA's Temporal scaler ignores `ca` and trusts the system CAs and the CA files of its operator's --ca-dir (default /custom/ca): put the CA of temporal.tls.caSecret there (e.g. the KEDA chart's volumes.keda.extraVolumes/extraVolumeMounts) and set autoscaling.keda.operatorTrustsServerCA: true" $who) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- if and $t.tls.serverName (semverCompare "<2.18.0" $v) -}}
{{- fail (printf "%s: temporal.tls.serverName needs the Temporal scaler's tlsServerName, which KEDA has from 2.18.0 (autoscaling.keda.version is %s): upgrade KEDA, or unset temporal.tls.serverName" $who $v) -}}
{{- end -}}
{{- end }}

{{/*
The autoscaling plan of one unit (a queue, a build, or a WorkerDeployment's template), as JSON,
from its shape and the drain time (terminationGracePeriodSeconds):

- behavior: the HPA behavior (the shape's scale-down policy and stabilization window, at least
  the drain time, with autoscaling.<kind>.behavior merged over it);
- cooldownPeriod: KEDA's, the shape's (at least the drain time) unless set;
- slots: whether the ScaledObject gets the slots-in-use trigger (long-activities and batch,
  with autoscaling.keda.prometheus.serverAddress);
- includeRunning: the Temporal trigger's includeRunningWorkflowCount;
- slotMetric: whether the HPA has the External slot utilisation metric.

Fails, naming the unit, for what the shape or the KEDA version cannot allow.
Arguments: dict "root" $ "u" unit "mode" queue|build|controller.
*/}}
{{- define "temporal-fleet.scalingPlan" -}}
{{- $root := .root -}}
{{- $u := .u -}}
{{- $a := $u.autoscaling -}}
{{- $who := printf "queue %s" $u.name -}}
{{- if $u.buildId -}}
{{- $who = printf "%s, build %s" $who $u.buildId -}}
{{- end -}}
{{- $shape := $u.shape | default "long-activities" -}}
{{- $who = printf "%s (shape %s)" $who $shape -}}
{{- $long := ne $shape "short" -}}
{{- $drain := int (add $u.shutdownTimeoutSeconds $u.terminationGracePeriodExtraSeconds) -}}
{{- if gt $drain 3600 -}}
{{- fail (printf "%s: its drain time, terminationGracePeriodSeconds %d, is above 3600 seconds, the longest scale-down stabilization window an HPA takes: lower shutdownTimeoutSeconds, or use autoscaling.kind none" $who $drain) -}}
{{- end -}}
{{- $base := int (get (dict "short" 300 "long-activities" 600 "batch" 900) $shape) -}}
{{- $period := min 1800 (max 60 $drain) -}}
{{- $policy := dict "type" "Pods" "value" 1 "periodSeconds" $period -}}
{{- if not $long -}}
{{- $policy = dict "type" "Percent" "value" 50 "periodSeconds" $period -}}
{{- end -}}
{{- $derived := dict "scaleDown" (dict "stabilizationWindowSeconds" (max $base $drain) "policies" (list $policy)) -}}
{{- $user := dig $a.kind "behavior" (dict) $a | default (dict) -}}
{{- $behavior := include "temporal-fleet.deepMerge" (list $derived $user) | fromJson -}}
{{- $window := dig "scaleDown" "stabilizationWindowSeconds" 0 $behavior -}}
{{- if lt (int $window) $drain -}}
{{- fail (printf "%s: autoscaling.%s.behavior.scaleDown.stabilizationWindowSeconds (%d) is below its drain time, terminationGracePeriodSeconds (%d = shutdownTimeoutSeconds + terminationGracePeriodExtraSeconds): a scale-down would be reconsidered before the removed workers finished draining. Give at least %d, or leave it to the shape" $who $a.kind (int $window) $drain $drain) -}}
{{- end -}}
{{- $plan := dict "behavior" $behavior "slots" false "includeRunning" false "slotMetric" false "drain" $drain -}}
{{- if eq $a.kind "keda" -}}
{{- $k := $root.Values.autoscaling.keda -}}
{{- $v := include "temporal-fleet.kedaVersion" $root -}}
{{- if and (ne .mode "queue") (semverCompare "<2.20.0" $v) -}}
{{- fail (printf "%s: scaling each build on its own Worker Deployment Version's backlog needs the Temporal scaler's workerDeploymentName and workerDeploymentBuildId, which KEDA has from 2.20.0 (autoscaling.keda.version is %s): upgrade KEDA%s" $who $v (ternary "" ", or set autoscaling.keda.versionBacklog false" (eq .mode "controller"))) -}}
{{- end -}}
{{- $cooldown := dig "keda" "cooldownPeriod" nil $a -}}
{{- if kindIs "invalid" $cooldown -}}
{{- $cooldown = max $base $drain -}}
{{- else if and (eq (int $a.minReplicas) 0) (lt (int $cooldown) $drain) -}}
{{- fail (printf "%s: autoscaling.keda.cooldownPeriod (%d) is below its drain time, terminationGracePeriodSeconds (%d): give at least %d, or null for the shape's (%d)" $who (int $cooldown) $drain $drain (max $base $drain)) -}}
{{- end -}}
{{- $_ := set $plan "cooldownPeriod" (int $cooldown) -}}
{{- if and $long $k.prometheus.serverAddress -}}
{{- $_ := set $plan "slots" true -}}
{{- if not $root.Values.serviceMonitor.enabled -}}
{{- fail (printf "%s: its slots-in-use trigger (autoscaling.keda.prometheus.serverAddress) queries temporal_worker_task_slots_used as the chart's ServiceMonitor scrapes it (job and kubernetes_namespace labels), but serviceMonitor.enabled is false: enable it, or unset autoscaling.keda.prometheus.serverAddress (then minReplicas >= 1)" $who) -}}
{{- end -}}
{{- end -}}
{{- if and $long (eq (int $a.minReplicas) 0) (not $plan.slots) -}}
{{- fail (printf "%s: autoscaling.minReplicas 0 would let KEDA scale it to zero on its backlog alone, which is empty while its activities run, cutting in-flight work: set autoscaling.keda.prometheus.serverAddress (a second trigger then keeps it up while task slots are in use) or autoscaling.minReplicas >= 1" $who) -}}
{{- end -}}
{{- $running := dig "keda" "includeRunningWorkflowCount" nil $a -}}
{{- if kindIs "invalid" $running -}}
{{- $running = and $long (semverCompare ">=2.21.0" $v) -}}
{{- else if and $running (semverCompare "<2.21.0" $v) -}}
{{- fail (printf "%s: autoscaling.keda.includeRunningWorkflowCount needs KEDA 2.21 (autoscaling.keda.version is %s): set it to null or false" $who $v) -}}
{{- end -}}
{{- $_ := set $plan "includeRunning" (ternary true false (and $running true)) -}}
{{- end -}}
{{- if and (eq $a.kind "hpa") (gt (int (dig "hpa" "targetSlotUtilisationPercentage" 0 $a)) 0) -}}
{{- if or $u.buildId (ne .mode "queue") -}}
{{- fail (printf "%s: autoscaling.hpa.targetSlotUtilisationPercentage reads the recording rule task_queue_worker_type:temporal_worker_task_slots:utilisation, which sums every build of the task queue: a build would scale on the others' work. Use CPU or memory, or autoscaling.kind keda, for a versioned queue" $who) -}}
{{- end -}}
{{- $_ := set $plan "slotMetric" true -}}
{{- end -}}
{{- toJson $plan -}}
{{- end }}

{{/*
The PromQL sum of the task slots in use of one unit's workers (every worker type), as the
chart's ServiceMonitor labels them: its job, the release namespace, its task queue, and a
build's build_id. A WorkerDeployment's template (mode "controller") serves every version and
the controller fills in only the Temporal trigger, so it counts every version's slots: each
version then stays up while any version has work in flight (never less safe, at worst one
pod longer). Arguments: dict "root" $ "u" unit "mode" mode.
*/}}
{{- define "temporal-fleet.slotsInUseQuery" -}}
{{- $root := .root -}}
{{- $m := list (printf "job=%q" $root.Values.serviceMonitor.jobName) (printf "kubernetes_namespace=%q" $root.Release.Namespace) (printf "task_queue=%q" .u.taskQueue) -}}
{{- if and .u.buildId (ne .mode "controller") -}}
{{- $m = append $m (printf "build_id=%q" .u.buildId) -}}
{{- end -}}
{{- printf "sum(temporal_worker_task_slots_used{%s})" (join "," $m) -}}
{{- end }}

{{/*
The spec of a unit's HorizontalPodAutoscaler, without scaleTargetRef (the caller adds it): CPU
and/or memory utilization of its own pods and/or the queue's task slot utilisation (External,
via prometheus-adapter), with the shape's behavior.
Arguments: dict "root" $ "u" unit "mode" queue|build|controller.
*/}}
{{- define "temporal-fleet.hpaSpec" -}}
{{- $root := .root -}}
{{- $u := .u -}}
{{- $a := $u.autoscaling -}}
{{- $plan := include "temporal-fleet.scalingPlan" . | fromJson -}}
minReplicas: {{ int $a.minReplicas }}
maxReplicas: {{ int $a.maxReplicas }}
metrics:
  {{- with $a.hpa.targetCPUUtilizationPercentage }}
  - type: Resource
    resource:
      name: cpu
      target:
        type: Utilization
        averageUtilization: {{ int . }}
  {{- end }}
  {{- with $a.hpa.targetMemoryUtilizationPercentage }}
  - type: Resource
    resource:
      name: memory
      target:
        type: Utilization
        averageUtilization: {{ int . }}
  {{- end }}
  {{- if $plan.slotMetric }}
  # Slots in use / slots of slotWorkerType across the queue's workers: the recording rule
  # task_queue_worker_type:temporal_worker_task_slots:utilisation, as prometheus-adapter serves
  # it (chart README). Value, not AverageValue: it is already a ratio, so the HPA scales by
  # utilisation / target, as for CPU.
  - type: External
    external:
      metric:
        name: {{ $root.Values.autoscaling.prometheusAdapter.slotUtilisationMetric }}
        selector:
          matchLabels:
            namespace: {{ $root.Values.temporal.namespace | quote }}
            task_queue: {{ $u.taskQueue | quote }}
            worker_type: {{ $a.hpa.slotWorkerType | quote }}
      target:
        type: Value
        value: {{ printf "%dm" (mul (int $a.hpa.targetSlotUtilisationPercentage) 10) | quote }}
  {{- end }}
behavior:
  {{- toYaml $plan.behavior | nindent 2 }}
{{- end }}

{{/*
The spec of a unit's KEDA ScaledObject, without scaleTargetRef.
mode "queue": the task queue's whole backlog (unversioned workers, or a target build when
  autoscaling.keda.versionBacklog is false);
mode "build": only this build's Worker Deployment Version backlog (workerDeploymentName and
  workerDeploymentBuildId, KEDA >= 2.20);
mode "controller": the same, left for temporal-worker-controller to fill per version (the ""
  sentinels of workerDeploymentName, workerDeploymentBuildId and namespace).
A long-activities or batch unit also gets the slots-in-use trigger (KEDA's Prometheus scaler)
when autoscaling.keda.prometheus.serverAddress is set, and
includeRunningWorkflowCount where KEDA has it (2.21).
Arguments: dict "root" $ "u" unit "mode" mode.
*/}}
{{- define "temporal-fleet.scaledObjectSpec" -}}
{{- $root := .root -}}
{{- $u := .u -}}
{{- $a := $u.autoscaling -}}
{{- $plan := include "temporal-fleet.scalingPlan" . | fromJson -}}
minReplicaCount: {{ int $a.minReplicas }}
maxReplicaCount: {{ int $a.maxReplicas }}
pollingInterval: {{ int $a.keda.pollingInterval }}
# Idle time before scaling to zero: the shape's, at least the drain time.
cooldownPeriod: {{ int $plan.cooldownPeriod }}
{{- if and $u.buildId (ne .mode "controller") (eq (int $a.minReplicas) 0) }}
# A new build scales to zero only after the promotion hook had time to see its pollers.
initialCooldownPeriod: {{ int $root.Values.promoteJob.activeDeadlineSeconds }}
{{- end }}
advanced:
  horizontalPodAutoscalerConfig:
    # The shape's scale-down (window at least the drain time, {{ $plan.drain }}s), merged with
    # autoscaling.keda.behavior.
    behavior:
      {{- toYaml $plan.behavior | nindent 6 }}
triggers:
  - type: temporal
    name: {{ $u.taskQueue | quote }}
    metadata:
      endpoint: {{ $root.Values.temporal.address | quote }}
      {{- if eq .mode "controller" }}
      # Filled in by temporal-worker-controller for each version.
      namespace: ""
      workerDeploymentName: ""
      workerDeploymentBuildId: ""
      {{- else }}
      namespace: {{ $root.Values.temporal.namespace | quote }}
      {{- end }}
      taskQueue: {{ $u.taskQueue | quote }}
      {{- if eq .mode "build" }}
      workerDeploymentName: {{ $u.deploymentName | quote }}
      workerDeploymentBuildId: {{ $u.buildId | quote }}
      {{- end }}
      targetQueueSize: {{ include "temporal-fleet.envValue" $a.keda.targetQueueSize | quote }}
      activationTargetQueueSize: {{ include "temporal-fleet.envValue" $a.keda.activationTargetQueueSize | quote }}
      queueTypes: {{ join "," $a.keda.queueTypes | quote }}
      {{- with $root.Values.temporal.tls.serverName }}
      tlsServerName: {{ . | quote }}
      {{- end }}
      {{- if $plan.includeRunning }}
      # Stay active while workflows run on the task queue (KEDA >= 2.21).
      includeRunningWorkflowCount: "true"
      {{- end }}
    {{- if include "temporal-fleet.hasCredentials" $root }}
    authenticationRef:
      name: {{ include "temporal-fleet.triggerAuthName" $root }}
    {{- end }}
  {{- if $plan.slots }}
  # In-flight work: active (so never scaled to zero) while any task slot of the queue's workers
  # is in use, and at least ceil(in use / targetPerReplica) replicas. No pod, no series: 0.
  - type: prometheus
    name: slots-in-use
    metricType: AverageValue
    metadata:
      serverAddress: {{ $root.Values.autoscaling.keda.prometheus.serverAddress | quote }}
      query: {{ include "temporal-fleet.slotsInUseQuery" (dict "root" $root "u" $u "mode" .mode) | quote }}
      threshold: {{ include "temporal-fleet.envValue" $a.keda.slotsInUse.targetPerReplica | quote }}
      activationThreshold: "0"
      ignoreNullValues: "true"
  {{- end }}
{{- end }}
