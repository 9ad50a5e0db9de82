{{/*
Chart name (app.kubernetes.io/name).
*/}}
{{- define "temporal-fleet.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name: the prefix of every object name. The release name alone when it already contains the
chart name; truncated to 63 characters (DNS label).
*/}}
{{- define "temporal-fleet.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Chart name and version (helm.sh/chart).
*/}}
{{- define "temporal-fleet.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Labels of every object (Kubernetes recommended labels).
*/}}
{{- define "temporal-fleet.labels" -}}
helm.sh/chart: {{ include "temporal-fleet.chart" . }}
{{ include "temporal-fleet.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: temporal-fleet
{{- end }}

{{/*
Selector labels of the release: every pod of the chart (workers and the namespace Job) has them.
*/}}
{{- define "temporal-fleet.selectorLabels" -}}
app.kubernetes.io/name: {{ include "temporal-fleet.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
Service account of the workers.
*/}}
{{- define "temporal-fleet.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "temporal-fleet.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
Deep merge of two maps, returned as JSON: (list base override). Maps merge key by key; any other
value of the override replaces the base's, including false, 0 and "" (unlike sprig's merge and
mergeOverwrite, which treat those as unset, so `replicas: 0` or `enabled: false` on a queue would
silently keep the default). A null in the override keeps the base value. Lists are replaced whole.
*/}}
{{- define "temporal-fleet.deepMerge" -}}
{{- $out := deepCopy (index . 0) -}}
{{- range $key, $value := (index . 1) -}}
{{- $base := get $out $key -}}
{{- if and (kindIs "map" $value) (kindIs "map" $base) -}}
{{- $_ := set $out $key (include "temporal-fleet.deepMerge" (list $base $value) | fromJson) -}}
{{- else if not (kindIs "invalid" $value) -}}
{{- $_ := set $out $key $value -}}
{{- end -}}
{{- end -}}
{{- toJson $out -}}
{{- end }}

{{/*
Object name of one queue's objects: <fullname>-<queue>, at most 63 characters.
Arguments: dict "root" $ "name" queue.
*/}}
{{- define "temporal-fleet.queueObjectName" -}}
{{- $full := include "temporal-fleet.fullname" .root -}}
{{- printf "%s-%s" ($full | trunc (int (sub 62 (len .name))) | trimSuffix "-") .name -}}
{{- end }}

{{/*
An image reference from an image block ({repository, tag, digest}) of queue `name`, as JSON
{"ref": ..., "tag": ...}. Arguments: dict "root" $ "name" queue "image" block "who" message prefix
(and "hint": where to give the digest, for a build).
*/}}
{{- define "temporal-fleet.imageRef" -}}
{{- $root := .root -}}
{{- $repository := .image.repository -}}
{{- if not $repository -}}
{{- if not $root.Values.image.registry -}}
{{- fail (printf "%s has no image: set image.registry (images are <registry>/%s<queue>) or queues.%s.image.repository" .who $root.Values.image.repositoryPrefix .name) -}}
{{- end -}}
{{- $repository = printf "%s/%s%s" (trimSuffix "/" $root.Values.image.registry) $root.Values.image.repositoryPrefix .name -}}
{{- end -}}
{{- $tag := .image.tag | default $root.Chart.AppVersion -}}
{{- $ref := printf "%s:%s" $repository $tag -}}
{{- if .image.digest -}}
{{- $ref = printf "%s@%s" $ref .image.digest -}}
{{- else if $root.Values.image.requireDigest -}}
{{- $hint := .hint | default (printf "e.g. --set queues.%s.image.digest=sha256:..." .name) -}}
{{- fail (printf "%s: image.digest is required (image.requireDigest): pin the image as sha256:<64 hex digits>, %s" .who $hint) -}}
{{- end -}}
{{- toJson (dict "ref" $ref "tag" $tag) -}}
{{- end }}

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
Object name of one build's objects: <queue object name>-<build id as a DNS label>, at most 63
characters: when too long, the build id is cut to 12 characters plus a hash of it, then the
release part of the name is cut (the queue's name is kept).
Arguments: dict "root" $ "name" queue "buildId" id.
*/}}
{{- define "temporal-fleet.buildObjectName" -}}
{{- $base := include "temporal-fleet.queueObjectName" (dict "root" .root "name" .name) -}}
{{- $suffix := include "temporal-fleet.buildSuffix" .buildId -}}
{{- $result := printf "%s-%s" $base $suffix -}}
{{- if gt (len $result) 63 -}}
{{- $suffix = printf "%s-%s" ($suffix | trunc 12 | trimSuffix "-") (sha256sum .buildId | trunc 8) -}}
{{- $full := include "temporal-fleet.fullname" .root -}}
{{- $room := max 1 (sub 61 (add (len .name) (len $suffix))) -}}
{{- $result = printf "%s-%s-%s" ($full | trunc (int $room) | trimSuffix "-") .name $suffix | trunc 63 -}}
{{- end -}}
{{- $result -}}
{{- end }}

{{/*
A build id as a DNS label fragment: lower case, every run of other characters a "-".
*/}}
{{- define "temporal-fleet.buildSuffix" -}}
{{- regexReplaceAll "[^a-z0-9]+" (lower .) "-" | trimAll "-" -}}
{{- end }}

{{/*
The registered queues, as JSON: a map from name to the queue's registry fields (files/queues.yaml,
generated from the queue registry by `make sync`: taskQueue, workflowTypes, keepsState, shape)
and its values (.Values.queues.<name>). Fails for a queue in values the registry lacks, and for a
registry field that values set to anything but the registry's value.
*/}}
{{- define "temporal-fleet.queues" -}}
{{- $registry := .Files.Get "files/queues.yaml" | fromYaml -}}
{{- if hasKey $registry "Error" -}}
{{- fail (printf "files/queues.yaml is not valid YAML: %s" $registry.Error) -}}
{{- end -}}
{{- $values := .Values.queues | default dict -}}
{{- range $name := keys $values | sortAlpha -}}
{{- if not (hasKey $registry $name) -}}
{{- fail (printf "queues.%s: no queue %s is registered (files/queues.yaml, from the registry: %s); run `make sync` after adding or removing a queue" $name $name (keys $registry | sortAlpha | join ", ")) -}}
{{- end -}}
{{- end -}}
{{- $queues := dict -}}
{{- range $name, $registered := $registry -}}
{{- $own := get $values $name | default dict -}}
{{- range $key, $value := $registered -}}
{{- if and (hasKey $own $key) (ne (toJson (get $own $key)) (toJson $value)) -}}
{{- fail (printf "queues.%s.%s: %s is not the registry's %s (files/queues.yaml); values cannot change it" $name $key (toJson (get $own $key)) (toJson $value)) -}}
{{- end -}}
{{- end -}}
{{- $_ := set $queues $name (merge (deepCopy $own) $registered) -}}
{{- end -}}
{{- toJson $queues -}}
{{- end }}

{{/*
One queue's effective settings, as JSON: .Values.defaults deep-merged with the queue's entry of
temporal-fleet.queues (its registry fields and .Values.queues.<name>),
plus name, objectName, imageRef, imageTag and the default command, and the queue's workloads:

- versioned: whether its workers run with Worker Deployment Versioning (a builds list, or
  workerController.enabled);
- deploymentName: the Worker Deployment's name in Temporal (the queue's name; with the
  worker controller, <namespace>/<object name>, the name the controller gives it);
- units: the Deployments the chart renders, each with the queue's settings, its own
  objectName, image, replicas and autoscaling, buildId ("" unversioned) and target (the build
  rollout.target names, or the last one). Without builds, one unit: the queue itself. With
  workerController.enabled, none (the controller creates them);
- controllerUnit: with workerController.enabled, the unit of the WorkerDeployment's template;
- migrateUnit: the unit whose image runs the queue's schema migrations (the newest build:
  its revisions include every older build's, so a rollback to an older target still finds
  the schema known);
- targetBuildId, buildIds.

A queue that keeps state (keepsState, from the registry) without database.existingSecret fails
if it would run more than one pod (checkEmbeddedState).

Fails with a message naming the queue and the value to fix for what the schema cannot express.
Arguments: dict "root" $ "name" queue.
*/}}
{{- define "temporal-fleet.queue" -}}
{{- $root := .root -}}
{{- $name := .name -}}
{{- $who := printf "queue %s" $name -}}
{{- $wc := $root.Values.workerController.enabled -}}
{{- $q := include "temporal-fleet.deepMerge" (list $root.Values.defaults (get (include "temporal-fleet.queues" $root | fromJson) $name)) | fromJson -}}
{{- $_ := set $q "name" $name -}}
{{- $_ := set $q "objectName" (include "temporal-fleet.queueObjectName" (dict "root" $root "name" $name)) -}}
{{- include "temporal-fleet.checkKeyringEnv" (dict "root" $root "q" $q) -}}
{{- if not $q.builds -}}
{{- /* (A versioned queue's image is its rollout target's, set below.) */ -}}
{{- $image := include "temporal-fleet.imageRef" (dict "root" $root "name" $name "image" $q.image "who" $who) | fromJson -}}
{{- $_ := set $q "imageRef" $image.ref -}}
{{- $_ := set $q "imageTag" $image.tag -}}
{{- end -}}
{{- if not $q.command -}}
{{- $_ := set $q "command" (list "fleet" "worker" $name) -}}
{{- end -}}
{{- include "temporal-fleet.checkAutoscaling" (dict "who" $who "a" $q.autoscaling "resources" $q.resources) -}}
{{- /* Builds: ids unique, their object names too; the rollout target one of them. */ -}}
{{- $builds := $q.builds | default list -}}
{{- $ids := list -}}
{{- $suffixes := dict -}}
{{- range $b := $builds -}}
{{- $id := toString $b.buildId -}}
{{- if has $id $ids -}}
{{- fail (printf "%s: build %s is listed twice in builds (build ids are unique)" $who $id) -}}
{{- end -}}
{{- $suffix := include "temporal-fleet.buildSuffix" $id -}}
{{- if hasKey $suffixes $suffix -}}
{{- fail (printf "%s: builds %s and %s would share the object name suffix %q (build ids must differ in more than case and punctuation)" $who (get $suffixes $suffix) $id $suffix) -}}
{{- end -}}
{{- $_ := set $suffixes $suffix $id -}}
{{- $ids = append $ids $id -}}
{{- end -}}
{{- $r := $q.rollout -}}
{{- $target := "" -}}
{{- if $ids -}}
{{- $target = $r.target | default (last $ids) -}}
{{- if not (has $target $ids) -}}
{{- fail (printf "%s: rollout.target %q is not one of its builds (%s)" $who $target (join ", " $ids)) -}}
{{- end -}}
{{- else if $r.target -}}
{{- fail (printf "%s: rollout.target %q is set but the queue has no builds" $who $r.target) -}}
{{- end -}}
{{- if and (eq $r.mode "progressive") (not (kindIs "invalid" $r.rampPercentage)) (not $wc) -}}
{{- fail (printf "%s: rollout.rampPercentage is for rollout.mode promote; mode progressive ramps through rollout.progressive.steps" $who) -}}
{{- end -}}
{{- $_ := set $q "buildIds" $ids -}}
{{- $_ := set $q "targetBuildId" $target -}}
{{- $_ := set $q "versioned" (or $wc (gt (len $ids) 0)) -}}
{{- $_ := set $q "deploymentName" (ternary (printf "%s/%s" $root.Release.Namespace $q.objectName) $name $wc) -}}
{{- /* The units: one per build (the queue's settings, the build's overrides), or the queue. */ -}}
{{- $base := omit $q "builds" -}}
{{- $units := list -}}
{{- if not $ids -}}
{{- $units = list (merge (dict "buildId" "" "target" true) (deepCopy $base)) -}}
{{- end -}}
{{- range $b := $builds -}}
{{- $id := toString $b.buildId -}}
{{- $bwho := printf "%s, build %s" $who $id -}}
{{- $over := pick $b "image" "replicas" "autoscaling" -}}
{{- $bimg := $b.image | default dict -}}
{{- if and (or $bimg.tag $bimg.repository) (not $bimg.digest) -}}
{{- /* A build naming its own image is pinned by its own digest, never the queue's. */ -}}
{{- $_ := set $over "image" (merge (dict "digest" "") (deepCopy $bimg)) -}}
{{- end -}}
{{- $u := include "temporal-fleet.deepMerge" (list $base $over) | fromJson -}}
{{- $_ := set $u "buildId" $id -}}
{{- $_ := set $u "target" (eq $id $target) -}}
{{- $_ := set $u "objectName" (include "temporal-fleet.buildObjectName" (dict "root" $root "name" $name "buildId" $id)) -}}
{{- $hint := printf "in queues.%s.builds[].image.digest (a build naming its own image or tag never takes the queue's digest)" $name -}}
{{- $bimage := include "temporal-fleet.imageRef" (dict "root" $root "name" $name "image" $u.image "who" $bwho "hint" $hint) | fromJson -}}
{{- $_ := set $u "imageRef" $bimage.ref -}}
{{- $_ := set $u "imageTag" $bimage.tag -}}
{{- include "temporal-fleet.checkAutoscaling" (dict "who" $bwho "a" $u.autoscaling "resources" $u.resources) -}}
{{- $a := $u.autoscaling -}}
{{- if and (eq $a.kind "keda") (not $wc) (not $u.target) -}}
{{- /* A build that is not the target may still run pinned work: never scaled to zero. */ -}}
{{- $_ := set $a "minReplicas" (max 1 (int $a.minReplicas)) -}}
{{- if not $a.keda.versionBacklog -}}
{{- /* Without version-scoped backlog it would scale on the target's: fixed replicas. */ -}}
{{- $_ := set $a "kind" "none" -}}
{{- $_ := set $u "replicas" $a.minReplicas -}}
{{- end -}}
{{- end -}}
{{- if eq $id $target -}}
{{- if and (not $wc) $r.promote (eq $a.kind "none") (eq (int $u.replicas) 0) -}}
{{- fail (printf "%s: the rollout target has replicas 0, so the promotion hook would wait for its pollers in vain: give it replicas, or set rollout.promote false" $bwho) -}}
{{- end -}}
{{- $_ := set $q "imageRef" $u.imageRef -}}
{{- $_ := set $q "imageTag" $u.imageTag -}}
{{- $_ := set $q "targetUnit" $u -}}
{{- end -}}
{{- $units = append $units $u -}}
{{- end -}}
{{- /* The unit whose image migrates the schema: the newest build's (or the queue's). */ -}}
{{- $_ := set $q "migrateUnit" (last $units) -}}
{{- if and $q.keepsState (not $root.Values.database.existingSecret) -}}
{{- include "temporal-fleet.checkEmbeddedState" (dict "who" $who "units" $units) -}}
{{- end -}}
{{- if $wc -}}
{{- $_ := set $q "controllerUnit" (ternary $q.targetUnit (first $units) (gt (len $ids) 0)) -}}
{{- $_ := set $q "units" list -}}
{{- include "temporal-fleet.checkController" (dict "root" $root "q" $q) -}}
{{- else -}}
{{- $_ := set $q "units" $units -}}
{{- end -}}
{{- $_ := unset $q "targetUnit" -}}
{{- toJson $q -}}
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

{{/*
Names of the enabled queues, sorted, as JSON (a list).
*/}}
{{- define "temporal-fleet.enabledQueues" -}}
{{- $names := list -}}
{{- $queues := include "temporal-fleet.queues" . | fromJson -}}
{{- range $name := keys $queues | sortAlpha -}}
{{- $q := get $queues $name -}}
{{- if not (and (hasKey $q "enabled") (kindIs "bool" $q.enabled)) -}}
{{- if $.Values.defaults.enabled -}}
{{- $names = append $names $name -}}
{{- end -}}
{{- else if $q.enabled -}}
{{- $names = append $names $name -}}
{{- end -}}
{{- end -}}
{{- toJson $names -}}
{{- end }}

{{/*
Selector labels of one queue's pods, or of one build's (a unit with a buildId: plus
temporal-fleet/build-id). Arguments: dict "root" $ "q" queue or unit.
*/}}
{{- define "temporal-fleet.queueSelectorLabels" -}}
{{ include "temporal-fleet.selectorLabels" .root }}
app.kubernetes.io/component: worker
temporal-fleet/queue: {{ .q.name }}
{{- with .q.buildId }}
temporal-fleet/build-id: {{ . | quote }}
{{- end }}
{{- end }}

{{/*
Labels of one queue's (or build's) objects; app.kubernetes.io/version is its image tag.
Arguments: dict "root" $ "q" queue or unit.
*/}}
{{- define "temporal-fleet.queueLabels" -}}
helm.sh/chart: {{ include "temporal-fleet.chart" .root }}
{{ include "temporal-fleet.queueSelectorLabels" . }}
app.kubernetes.io/version: {{ regexReplaceAll "[^A-Za-z0-9._-]" (toString .q.imageTag) "_" | trunc 63 | trimAll "_.-" | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/part-of: temporal-fleet
{{- end }}

{{/*
An environment variable's value as a string: whole numbers without exponent (YAML numbers
arrive as floats, and 1000000 would print as 1e+06).
*/}}
{{- define "temporal-fleet.envValue" -}}
{{- if and (kindIs "float64" .) (eq (float64 (int64 .)) .) -}}
{{- int64 . -}}
{{- else -}}
{{- toString . -}}
{{- end -}}
{{- end }}

{{/*
Mount points of the Temporal TLS files from existing Secrets.
*/}}
{{- define "temporal-fleet.tlsClientDir" -}}/etc/temporal/tls/client{{- end }}
{{- define "temporal-fleet.tlsCaDir" -}}/etc/temporal/tls/ca{{- end }}

{{/*
Non-secret connection settings: the SDK's own TEMPORAL_* variables (temporalio.envconfig), as a
YAML map. Secrets (API key, certificate, key, CA) are referenced, never copied.
*/}}
{{- define "temporal-fleet.connectionEnv" -}}
{{- $t := .Values.temporal -}}
{{- $env := dict "TEMPORAL_ADDRESS" $t.address "TEMPORAL_NAMESPACE" $t.namespace -}}
{{- if or $t.tls.enabled $t.tls.clientCertSecret $t.tls.caSecret -}}
{{- $_ := set $env "TEMPORAL_TLS" "true" -}}
{{- end -}}
{{- if $t.tls.serverName -}}
{{- $_ := set $env "TEMPORAL_TLS_SERVER_NAME" $t.tls.serverName -}}
{{- end -}}
{{- if $t.tls.clientCertSecret -}}
{{- $_ := set $env "TEMPORAL_TLS_CLIENT_CERT_PATH" (printf "%s/%s" (include "temporal-fleet.tlsClientDir" .) $t.tls.certKey) -}}
{{- $_ := set $env "TEMPORAL_TLS_CLIENT_KEY_PATH" (printf "%s/%s" (include "temporal-fleet.tlsClientDir" .) $t.tls.keyKey) -}}
{{- end -}}
{{- if $t.tls.caSecret -}}
{{- $_ := set $env "TEMPORAL_TLS_SERVER_CA_CERT_PATH" (printf "%s/%s" (include "temporal-fleet.tlsCaDir" .) $t.tls.caKey) -}}
{{- end -}}
{{- toYaml $env -}}
{{- end }}

{{/*
The connection settings temporal-worker-controller does not inject itself (it sets
TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_TLS_SERVER_NAME, the mTLS certificate and key
paths and TEMPORAL_API_KEY from the Connection): TLS on, and the CA bundle, as a YAML map.
*/}}
{{- define "temporal-fleet.controllerConnectionEnv" -}}
{{- $t := .Values.temporal -}}
{{- $env := dict -}}
{{- if or $t.tls.enabled $t.tls.clientCertSecret $t.tls.caSecret -}}
{{- $_ := set $env "TEMPORAL_TLS" "true" -}}
{{- end -}}
{{- if $t.tls.caSecret -}}
{{- $_ := set $env "TEMPORAL_TLS_SERVER_CA_CERT_PATH" (printf "%s/%s" (include "temporal-fleet.controllerCaDir" .) $t.tls.caKey) -}}
{{- end -}}
{{- toYaml $env -}}
{{- end }}

{{/*
Where the CA bundle is mounted in pods the controller creates: outside /etc/temporal/tls, where
the controller mounts the Connection's mTLS Secret.
*/}}
{{- define "temporal-fleet.controllerCaDir" -}}/etc/temporal/ca{{- end }}

{{/*
Secret environment variables (EnvVar list): the API key from its existing Secret.
*/}}
{{- define "temporal-fleet.secretEnv" -}}
{{- with .Values.temporal.apiKey.existingSecret }}
- name: TEMPORAL_API_KEY
  valueFrom:
    secretKeyRef:
      name: {{ . }}
      key: {{ $.Values.temporal.apiKey.key }}
{{- end }}
{{- end }}

{{/*
Volumes (list) for the TLS files: the client certificate/key and the CA from existing Secrets.
*/}}
{{- define "temporal-fleet.tlsVolumes" -}}
{{- $tls := .Values.temporal.tls -}}
{{- if $tls.clientCertSecret }}
- name: temporal-tls-client
  secret:
    secretName: {{ $tls.clientCertSecret }}
    defaultMode: 288 # 0440: readable by the pod's fsGroup only
    items:
      - key: {{ $tls.certKey }}
        path: {{ $tls.certKey }}
      - key: {{ $tls.keyKey }}
        path: {{ $tls.keyKey }}
{{- end }}
{{- if $tls.caSecret }}
- name: temporal-tls-ca
  secret:
    secretName: {{ $tls.caSecret }}
    defaultMode: 288 # 0440
    items:
      - key: {{ $tls.caKey }}
        path: {{ $tls.caKey }}
{{- end }}
{{- end }}

{{/*
Volume mounts (list) for the TLS files.
*/}}
{{- define "temporal-fleet.tlsVolumeMounts" -}}
{{- if .Values.temporal.tls.clientCertSecret }}
- name: temporal-tls-client
  mountPath: {{ include "temporal-fleet.tlsClientDir" . }}
  readOnly: true
{{- end }}
{{- if .Values.temporal.tls.caSecret }}
- name: temporal-tls-ca
  mountPath: {{ include "temporal-fleet.tlsCaDir" . }}
  readOnly: true
{{- end }}
{{- end }}

{{/*
The data of one queue's ConfigMap (the worker's non-secret environment), as JSON with sorted
keys: hashed into the pods' checksum/config annotation, so any change rolls that queue's pods
(and only a change of the data: a new build or a new rollout target rolls nothing).
Arguments: dict "root" $ "q" queue (or one of its units).
*/}}
{{- define "temporal-fleet.queueConfigData" -}}
{{- $root := .root -}}
{{- $q := .q -}}
{{- $data := dict -}}
{{- if $root.Values.workerController.enabled -}}
{{- /* The controller injects the address, namespace, deployment, build id and mTLS files. */ -}}
{{- $data = include "temporal-fleet.controllerConnectionEnv" $root | fromYaml -}}
{{- $_ := set $data "WORKER_VERSIONING" "on" -}}
{{- /* The controller owns routing: a first build must not make itself current. */ -}}
{{- $_ := set $data "WORKER_VERSIONING_BOOTSTRAP" "false" -}}
{{- else -}}
{{- $data = include "temporal-fleet.connectionEnv" $root | fromYaml -}}
{{- if $q.versioned -}}
{{- /* Shared by every build of the queue (each sets its own TEMPORAL_WORKER_BUILD_ID). */ -}}
{{- $_ := set $data "TEMPORAL_DEPLOYMENT_NAME" $q.deploymentName -}}
{{- $_ := set $data "WORKER_VERSIONING" "on" -}}
{{- $_ := set $data "WORKER_VERSIONING_BOOTSTRAP" "true" -}}
{{- else -}}
{{- /* Unversioned, even if the image carries a TEMPORAL_WORKER_BUILD_ID. */ -}}
{{- $_ := set $data "WORKER_VERSIONING" "off" -}}
{{- end -}}
{{- end -}}
{{- $_ := set $data "WORKER_HTTP_PORT" (include "temporal-fleet.envValue" $root.Values.httpPort) -}}
{{- $_ := set $data "WORKER_SHUTDOWN_TIMEOUT" (printf "%ss" (include "temporal-fleet.envValue" $q.shutdownTimeoutSeconds)) -}}
{{- range $key, $value := $q.worker -}}
{{- if not (kindIs "invalid" $value) -}}
{{- $_ := set $data (printf "WORKER_%s" ($key | snakecase | upper)) (include "temporal-fleet.envValue" $value) -}}
{{- end -}}
{{- end -}}
{{- range $key, $value := $q.env -}}
{{- if not (kindIs "invalid" $value) -}}
{{- $_ := set $data $key (include "temporal-fleet.envValue" $value) -}}
{{- end -}}
{{- end -}}
{{- toJson $data -}}
{{- end }}

{{/*
One queue's ConfigMap (the worker's non-secret environment), shared by all its builds.
Rendered by configmap.yaml. Arguments: dict "root" $ "q" queue.
*/}}
{{- define "temporal-fleet.queueConfigMap" -}}
{{- $root := .root -}}
{{- $q := .q -}}
{{- $data := include "temporal-fleet.queueConfigData" . | fromJson -}}
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ $q.objectName }}
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- include "temporal-fleet.queueLabels" . | nindent 4 }}
data:
  {{- range $key := keys $data | sortAlpha }}
  {{ $key }}: {{ get $data $key | quote }}
  {{- end }}
{{- end }}

{{/*
The port of temporal.address (host:port), for the NetworkPolicy's egress rule.
*/}}
{{- define "temporal-fleet.temporalPort" -}}
{{- splitList ":" .Values.temporal.address | last | int -}}
{{- end }}

{{/*
Names of the enabled queues that keep state, sorted, as JSON (a list): the queues whose workers
get DATABASE_URL and whose schemas the migration hook applies.
*/}}
{{- define "temporal-fleet.statefulQueues" -}}
{{- $names := list -}}
{{- $queues := include "temporal-fleet.queues" . | fromJson -}}
{{- range $name := include "temporal-fleet.enabledQueues" . | fromJsonArray -}}
{{- $q := get $queues $name -}}
{{- if $q.keepsState -}}
{{- $names = append $names $name -}}
{{- end -}}
{{- end -}}
{{- toJson $names -}}
{{- end }}

{{/*
Whether the release uses the shared database: database.existingSecret is set and an enabled
queue keeps state ("true" or "").
*/}}
{{- define "temporal-fleet.usesDatabase" -}}
{{- if and .Values.database.existingSecret (include "temporal-fleet.statefulQueues" . | fromJsonArray) -}}true{{- end -}}
{{- end }}

{{/*
DATABASE_URL (EnvVar list) from database.existingSecret; nothing without it.
*/}}
{{- define "temporal-fleet.databaseEnv" -}}
{{- with .Values.database.existingSecret }}
- name: DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ . }}
      key: {{ $.Values.database.secretKey }}
{{- end }}
{{- end }}

{{/*
The NetworkPolicy egress rule (a NetworkPolicyEgressRule, as YAML) to the database of
database.egress: its ports, to its cidrs (ipBlocks) and its namespace/pod selectors, or to any
address with anyAddress. Fails when it names no peer: the workers and the migration Jobs could
not reach the database.
*/}}
{{- define "temporal-fleet.databaseEgressRule" -}}
{{- $e := .Values.database.egress -}}
{{- $peers := list -}}
{{- range $cidr := $e.cidrs -}}
{{- $peers = append $peers (dict "ipBlock" (dict "cidr" $cidr)) -}}
{{- end -}}
{{- if or $e.namespaceSelector $e.podSelector -}}
{{- $peer := dict -}}
{{- with $e.namespaceSelector }}{{ $_ := set $peer "namespaceSelector" . }}{{ end -}}
{{- with $e.podSelector }}{{ $_ := set $peer "podSelector" . }}{{ end -}}
{{- $peers = append $peers $peer -}}
{{- end -}}
{{- if and (not $peers) (not $e.anyAddress) -}}
{{- fail "database.egress: networkPolicy.enabled lets the pods reach only DNS and Temporal, and database.egress names no address of the database: set database.egress.cidrs (its IP blocks) or database.egress.namespaceSelector/podSelector (an in-cluster database), or database.egress.anyAddress: true" -}}
{{- end -}}
{{- $ports := list -}}
{{- range $port := $e.ports -}}
{{- $ports = append $ports (dict "port" (int $port) "protocol" "TCP") -}}
{{- end -}}
{{- $rule := dict "ports" $ports -}}
{{- with $peers }}{{ $_ := set $rule "to" . }}{{ end -}}
{{- toYaml $rule -}}
{{- end }}

{{/*
The cluster DNS egress rule (YAML), networkPolicy.dns.
*/}}
{{- define "temporal-fleet.dnsEgressRule" -}}
{{- $dns := .Values.networkPolicy.dns -}}
ports:
  - port: 53
    protocol: UDP
  - port: 53
    protocol: TCP
to:
  - namespaceSelector:
      {{- toYaml $dns.namespaceSelector | nindent 6 }}
    podSelector:
      {{- toYaml $dns.podSelector | nindent 6 }}
{{- end }}
{{/*
The image of a pod that runs only the fleet CLI (the namespace Job, the codec server): its own
image block if it names a repository (tag: the chart's appVersion by default; a digest, which
image.requireDigest requires), else the first enabled queue's image (every queue image has the
CLI). Arguments: dict "root" $ "image" block "who" values path ("namespaceJob").
*/}}
{{- define "temporal-fleet.cliImage" -}}
{{- $root := .root -}}
{{- $image := .image -}}
{{- if $image.repository -}}
{{- $ref := printf "%s:%s" $image.repository ($image.tag | default $root.Chart.AppVersion) -}}
{{- if $image.digest -}}
{{- $ref = printf "%s@%s" $ref $image.digest -}}
{{- else if $root.Values.image.requireDigest -}}
{{- fail (printf "%s: image.digest is required (image.requireDigest): set %s.image.digest=sha256:..." .who .who) -}}
{{- end -}}
{{- $ref -}}
{{- else -}}
{{- $queues := include "temporal-fleet.enabledQueues" $root | fromJsonArray -}}
{{- if not $queues -}}
{{- fail (printf "%s has no image: set %s.image.repository (no queue is enabled to borrow an image from)" .who .who) -}}
{{- end -}}
{{- (include "temporal-fleet.queue" (dict "root" $root "name" (first $queues)) | fromJson).imageRef -}}
{{- end -}}
{{- end }}

{{/*
Payload encryption: the keyring of encryption.existingSecret, mounted read-only as the file
<encryptionDir>/keys (its key secretKey only) and named by FLEET_ENCRYPTION_KEYS_FILE, in the
pods that read or write payloads (workers, the promotion hook, the codec server). Nothing
without encryption.existingSecret.
*/}}
{{- define "temporal-fleet.encryptionDir" -}}/etc/fleet/encryption{{- end }}

{{/*
FLEET_ENCRYPTION_KEYS_FILE (EnvVar list), with encryption.existingSecret.
*/}}
{{- define "temporal-fleet.encryptionEnv" -}}
{{- if .Values.encryption.existingSecret }}
- name: FLEET_ENCRYPTION_KEYS_FILE
  value: {{ printf "%s/keys" (include "temporal-fleet.encryptionDir" .) | quote }}
{{- end }}
{{- end }}

{{/*
The keyring's volume (list), with encryption.existingSecret.
*/}}
{{- define "temporal-fleet.encryptionVolumes" -}}
{{- with .Values.encryption.existingSecret }}
- name: encryption-keys
  secret:
    secretName: {{ . }}
    defaultMode: 288 # 0440: readable by the pod's fsGroup only
    items:
      - key: {{ $.Values.encryption.secretKey }}
        path: keys
{{- end }}
{{- end }}

{{/*
The keyring's volume mount (list), with encryption.existingSecret.
*/}}
{{- define "temporal-fleet.encryptionVolumeMounts" -}}
{{- if .Values.encryption.existingSecret }}
- name: encryption-keys
  mountPath: {{ include "temporal-fleet.encryptionDir" . }}
  readOnly: true
{{- end }}
{{- end }}

{{/*
With encryption.existingSecret, a queue must not give the keyring variables itself (workerkit
refuses FLEET_ENCRYPTION_KEYS next to FLEET_ENCRYPTION_KEYS_FILE; a second file would shadow
the Secret's). Arguments: dict "root" $ "q" queue.
*/}}
{{- define "temporal-fleet.checkKeyringEnv" -}}
{{- if .root.Values.encryption.existingSecret -}}
{{- $q := .q -}}
{{- range $var := list "FLEET_ENCRYPTION_KEYS" "FLEET_ENCRYPTION_KEYS_FILE" -}}
{{- $where := list -}}
{{- range $field := list "env" "secretEnv" -}}
{{- $m := get $q $field | default dict -}}
{{- if and (hasKey $m $var) (not (kindIs "invalid" (get $m $var))) -}}
{{- $where = append $where $field -}}
{{- end -}}
{{- end -}}
{{- range $e := $q.extraEnv | default list -}}
{{- if eq (toString $e.name) $var -}}
{{- $where = append $where "extraEnv" -}}
{{- end -}}
{{- end -}}
{{- if $where -}}
{{- fail (printf "queue %s: %s is set in %s, but encryption.existingSecret already gives the pods FLEET_ENCRYPTION_KEYS_FILE (workerkit refuses both): remove it, the keyring comes from the Secret" $q.name $var (join " and " (uniq $where))) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end }}

{{/*
Name of the codec server's objects: <fullname>-codec-server, at most 63 characters.
*/}}
{{- define "temporal-fleet.codecServerName" -}}
{{- printf "%s-codec-server" (include "temporal-fleet.fullname" . | trunc 50 | trimSuffix "-") -}}
{{- end }}

{{/*
Selector labels of the codec server's pods.
*/}}
{{- define "temporal-fleet.codecServerSelectorLabels" -}}
{{ include "temporal-fleet.selectorLabels" . }}
app.kubernetes.io/component: codec-server
{{- end }}

{{/*
Checks of codecServer.enabled: it decrypts with the workers' keyring (encryption.existingSecret),
answers only a bearer token (codecServer.tokenSecret) and CORS only for the UI's origins
(codecServer.origins). Fails naming every value that is missing.
*/}}
{{- define "temporal-fleet.checkCodecServer" -}}
{{- $c := .Values.codecServer -}}
{{- $missing := list -}}
{{- if not .Values.encryption.existingSecret -}}
{{- $missing = append $missing "encryption.existingSecret (the Secret holding the keyring the workers encrypt with: the codec server decrypts with the same keys)" -}}
{{- end -}}
{{- if not $c.tokenSecret -}}
{{- $missing = append $missing (printf "codecServer.tokenSecret (an existing Secret holding the bearer token, at least 16 characters, under the key codecServer.tokenKey, %s)" $c.tokenKey) -}}
{{- end -}}
{{- if not $c.origins -}}
{{- $missing = append $missing "codecServer.origins (the Temporal Web UI origins CORS answers, e.g. [https://temporal.example.com])" -}}
{{- end -}}
{{- if $missing -}}
{{- fail (printf "codecServer.enabled needs %s" (join "; and " $missing)) -}}
{{- end -}}
{{- end }}
