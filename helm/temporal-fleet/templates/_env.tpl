{{- /* Containers' environment: connection, secrets, each queue's ConfigMap, the database. */ -}}
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
