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
One queue's effective settings, as JSON: .Values.defaults deep-merged with .Values.queues.<name>,
plus name, objectName, imageRef, imageTag and the default command. Fails with a message naming
the queue and the value to fix for what the schema cannot express.
Arguments: dict "root" $ "name" queue.
*/}}
{{- define "temporal-fleet.queue" -}}
{{- $root := .root -}}
{{- $name := .name -}}
{{- $q := include "temporal-fleet.deepMerge" (list $root.Values.defaults (get $root.Values.queues $name)) | fromJson -}}
{{- $_ := set $q "name" $name -}}
{{- $_ := set $q "objectName" (include "temporal-fleet.queueObjectName" (dict "root" $root "name" $name)) -}}
{{- $repository := $q.image.repository -}}
{{- if not $repository -}}
{{- if not $root.Values.image.registry -}}
{{- fail (printf "queue %s has no image: set image.registry (images are <registry>/%s<queue>) or queues.%s.image.repository" $name $root.Values.image.repositoryPrefix $name) -}}
{{- end -}}
{{- $repository = printf "%s/%s%s" (trimSuffix "/" $root.Values.image.registry) $root.Values.image.repositoryPrefix $name -}}
{{- end -}}
{{- $tag := $q.image.tag | default $root.Chart.AppVersion -}}
{{- $ref := printf "%s:%s" $repository $tag -}}
{{- if $q.image.digest -}}
{{- $ref = printf "%s@%s" $ref $q.image.digest -}}
{{- end -}}
{{- $_ := set $q "imageRef" $ref -}}
{{- $_ := set $q "imageTag" $tag -}}
{{- if not $q.command -}}
{{- $_ := set $q "command" (list "fleet" "worker" $name) -}}
{{- end -}}
{{- $a := $q.autoscaling -}}
{{- if ne $a.kind "none" -}}
{{- if gt (int $a.minReplicas) (int $a.maxReplicas) -}}
{{- fail (printf "queue %s: autoscaling.minReplicas (%d) is above autoscaling.maxReplicas (%d)" $name (int $a.minReplicas) (int $a.maxReplicas)) -}}
{{- end -}}
{{- end -}}
{{- if eq $a.kind "hpa" -}}
{{- if lt (int $a.minReplicas) 1 -}}
{{- fail (printf "queue %s: an HPA needs autoscaling.minReplicas >= 1 (scaling to zero needs autoscaling.kind: keda)" $name) -}}
{{- end -}}
{{- if not (or $a.hpa.targetCPUUtilizationPercentage $a.hpa.targetMemoryUtilizationPercentage) -}}
{{- fail (printf "queue %s: autoscaling.kind hpa needs autoscaling.hpa.targetCPUUtilizationPercentage or targetMemoryUtilizationPercentage" $name) -}}
{{- end -}}
{{- if and $a.hpa.targetCPUUtilizationPercentage (not (dig "requests" "cpu" "" $q.resources)) -}}
{{- fail (printf "queue %s: an HPA on CPU needs resources.requests.cpu (utilization is relative to the request)" $name) -}}
{{- end -}}
{{- if and $a.hpa.targetMemoryUtilizationPercentage (not (dig "requests" "memory" "" $q.resources)) -}}
{{- fail (printf "queue %s: an HPA on memory needs resources.requests.memory (utilization is relative to the request)" $name) -}}
{{- end -}}
{{- end -}}
{{- toJson $q -}}
{{- end }}

{{/*
Names of the enabled queues, sorted, as JSON (a list).
*/}}
{{- define "temporal-fleet.enabledQueues" -}}
{{- $names := list -}}
{{- range $name := keys .Values.queues | sortAlpha -}}
{{- $q := get $.Values.queues $name -}}
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
Selector labels of one queue's pods. Arguments: dict "root" $ "q" queue.
*/}}
{{- define "temporal-fleet.queueSelectorLabels" -}}
{{ include "temporal-fleet.selectorLabels" .root }}
app.kubernetes.io/component: worker
temporal-fleet/queue: {{ .q.name }}
{{- end }}

{{/*
Labels of one queue's objects; app.kubernetes.io/version is the queue's image tag.
Arguments: dict "root" $ "q" queue.
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
One queue's ConfigMap (the worker's non-secret environment). Rendered by configmap.yaml and hashed
into the Deployment's checksum/config annotation, so any change rolls that queue's pods.
Arguments: dict "root" $ "q" queue.
*/}}
{{- define "temporal-fleet.queueConfigMap" -}}
{{- $root := .root -}}
{{- $q := .q -}}
{{- $data := include "temporal-fleet.connectionEnv" $root | fromYaml -}}
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
Whether the workers have Temporal credentials that KEDA's TriggerAuthentication must carry.
*/}}
{{- define "temporal-fleet.hasCredentials" -}}
{{- if or .Values.temporal.apiKey.existingSecret .Values.temporal.tls.clientCertSecret .Values.temporal.tls.caSecret -}}true{{- end -}}
{{- end }}
