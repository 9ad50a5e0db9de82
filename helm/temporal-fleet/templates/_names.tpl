{{- /* Names and labels: of the release, its queues, their builds, the service account. */ -}}
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
Object name of one queue's objects: <fullname>-<queue>, at most 63 characters.
Arguments: dict "root" $ "name" queue.
*/}}
{{- define "temporal-fleet.queueObjectName" -}}
{{- $full := include "temporal-fleet.fullname" .root -}}
{{- printf "%s-%s" ($full | trunc (int (sub 62 (len .name))) | trimSuffix "-") .name -}}
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
