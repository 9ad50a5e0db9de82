{{/*
The worker pod template (metadata and spec, a PodTemplateSpec) of one unit: a queue's
unversioned Deployment, one build's Deployment, or the template of a queue's WorkerDeployment
(temporal-worker-controller), which the controller completes with the connection, the Worker
Deployment name and the build id.
Arguments: dict "root" $ "u" unit "controller" bool.
*/}}
{{- define "temporal-fleet.podTemplate" -}}
{{- $root := .root -}}
{{- $u := .u -}}
{{- $controller := .controller -}}
{{- $args := dict "root" $root "q" $u -}}
metadata:
  labels:
    {{- include "temporal-fleet.queueLabels" $args | nindent 4 }}
    {{- with $u.podLabels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  annotations:
    # Any change of the queue's ConfigMap (connection, WORKER_* tuning, env) rolls its pods.
    checksum/config: {{ include "temporal-fleet.queueConfigData" (dict "root" $root "q" $u) | sha256sum }}
    kubectl.kubernetes.io/default-container: worker
    {{- with $u.podAnnotations }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  serviceAccountName: {{ include "temporal-fleet.serviceAccountName" $root }}
  automountServiceAccountToken: {{ $root.Values.serviceAccount.automount }}
  enableServiceLinks: false
  # Above WORKER_SHUTDOWN_TIMEOUT: in-flight activities get the whole timeout to finish after
  # SIGTERM before the kubelet's SIGKILL.
  terminationGracePeriodSeconds: {{ add $u.shutdownTimeoutSeconds $u.terminationGracePeriodExtraSeconds }}
  securityContext:
    {{- toYaml $root.Values.podSecurityContext | nindent 4 }}
  {{- with $root.Values.imagePullSecrets }}
  imagePullSecrets:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $u.priorityClassName }}
  priorityClassName: {{ . }}
  {{- end }}
  {{- with $u.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $u.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $u.affinity }}
  affinity:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $u.topologySpread }}
  topologySpreadConstraints:
    {{- range . }}
    - maxSkew: {{ int .maxSkew }}
      topologyKey: {{ .topologyKey }}
      whenUnsatisfiable: {{ .whenUnsatisfiable }}
      labelSelector:
        matchLabels:
          {{- include "temporal-fleet.queueSelectorLabels" (dict "root" $root "q" (omit $u "buildId")) | nindent 10 }}
      {{- if $controller }}
      # Each version's pods spread on their own (the controller labels them with their build).
      matchLabelKeys:
        - temporal.io/build-id
      {{- else if $u.buildId }}
      # Each build's pods spread on their own.
      matchLabelKeys:
        - temporal-fleet/build-id
      {{- end }}
    {{- end }}
  {{- end }}
  {{- $env := include "temporal-fleet.workerEnv" (dict "root" $root "u" $u "controller" $controller) | trim }}
  {{- if and $u.keepsState (not $root.Values.database.existingSecret) }}
  # No database: the worker keeps its state in this pod's own SQLite file (/tmp, one replica at
  # most), so the pod applies that file's schema before the worker starts. With a database the
  # migration hook Jobs do, once per release, and the pods never migrate. (No keyring: it
  # touches no Temporal payload.)
  initContainers:
    - name: db-migrate
      image: {{ $u.imageRef | quote }}
      imagePullPolicy: {{ $u.image.pullPolicy }}
      command: ["fleet", "db", "migrate", {{ $u.name | quote }}]
      envFrom:
        - configMapRef:
            name: {{ include "temporal-fleet.queueObjectName" (dict "root" $root "name" $u.name) }}
        {{- with $u.extraEnvFrom }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      {{- with $env }}
      env:
        {{- . | nindent 8 }}
      {{- end }}
      {{- with $u.resources }}
      resources:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      securityContext:
        {{- toYaml $root.Values.securityContext | nindent 8 }}
      volumeMounts:
        - name: tmp
          mountPath: /tmp
  {{- end }}
  containers:
    - name: worker
      image: {{ $u.imageRef | quote }}
      imagePullPolicy: {{ $u.image.pullPolicy }}
      command:
        {{- toYaml $u.command | nindent 8 }}
      {{- with $u.args }}
      args:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      ports:
        - name: http-metrics
          containerPort: {{ int $root.Values.httpPort }}
          protocol: TCP
      envFrom:
        - configMapRef:
            name: {{ include "temporal-fleet.queueObjectName" (dict "root" $root "name" $u.name) }}
        {{- with $u.extraEnvFrom }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      {{- $keyringEnv := include "temporal-fleet.encryptionEnv" $root | trim }}
      {{- if or $keyringEnv $env }}
      env:
        {{- with $keyringEnv }}
        {{- . | nindent 8 }}
        {{- end }}
        {{- with $env }}
        {{- . | nindent 8 }}
        {{- end }}
      {{- end }}
      # /healthz answers 200 while the process lives; /readyz only once connected and
      # polling, and 503 again while draining after SIGTERM.
      livenessProbe:
        httpGet:
          path: /healthz
          port: http-metrics
        {{- toYaml $u.probes.liveness | nindent 8 }}
      readinessProbe:
        httpGet:
          path: /readyz
          port: http-metrics
        {{- toYaml $u.probes.readiness | nindent 8 }}
      {{- with $u.resources }}
      resources:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      securityContext:
        {{- toYaml $root.Values.securityContext | nindent 8 }}
      volumeMounts:
        # The root filesystem is read-only: /tmp is the only writable path.
        - name: tmp
          mountPath: /tmp
        {{- with include "temporal-fleet.encryptionVolumeMounts" $root | trim }}
        {{- . | nindent 8 }}
        {{- end }}
        {{- if $controller }}
        {{- if $root.Values.temporal.tls.caSecret }}
        - name: temporal-tls-ca
          mountPath: {{ include "temporal-fleet.controllerCaDir" $root }}
          readOnly: true
        {{- end }}
        {{- else }}
        {{- with include "temporal-fleet.tlsVolumeMounts" $root | trim }}
        {{- . | nindent 8 }}
        {{- end }}
        {{- end }}
  volumes:
    - name: tmp
      emptyDir:
        sizeLimit: {{ $u.tmpSizeLimit }}
    {{- with include "temporal-fleet.encryptionVolumes" $root | trim }}
    {{- . | nindent 4 }}
    {{- end }}
    {{- if $controller }}
    {{- with $root.Values.temporal.tls.caSecret }}
    - name: temporal-tls-ca
      secret:
        secretName: {{ . }}
        defaultMode: 288 # 0440
        items:
          - key: {{ $root.Values.temporal.tls.caKey }}
            path: {{ $root.Values.temporal.tls.caKey }}
    {{- end }}
    {{- else }}
    {{- with include "temporal-fleet.tlsVolumes" $root | trim }}
    {{- . | nindent 4 }}
    {{- end }}
    {{- end }}
{{- end }}

{{/*
The worker container's env (EnvVar list): the build id of a build's Deployment, the API key
from its Secret (the controller injects its own), DATABASE_URL from database.existingSecret
(a queue that keeps state), secretEnv, then extraEnv.
Arguments: dict "root" $ "u" unit "controller" bool.
*/}}
{{- define "temporal-fleet.workerEnv" -}}
{{- if and .u.buildId (not .controller) }}
- name: TEMPORAL_WORKER_BUILD_ID
  value: {{ .u.buildId | quote }}
{{- end }}
{{- if not .controller }}
{{- with include "temporal-fleet.secretEnv" .root | trim }}
{{ . }}
{{- end }}
{{- end }}
{{- if .u.keepsState }}
{{- with include "temporal-fleet.databaseEnv" .root | trim }}
{{ . }}
{{- end }}
{{- end }}
{{- range $name, $ref := .u.secretEnv }}
{{- if $ref }}
- name: {{ $name }}
  valueFrom:
    secretKeyRef:
      name: {{ $ref.secret }}
      key: {{ $ref.key }}
      {{- if hasKey $ref "optional" }}
      optional: {{ $ref.optional }}
      {{- end }}
{{- end }}
{{- end }}
{{- with .u.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
Name of the release's KEDA TriggerAuthentication.
*/}}
{{- define "temporal-fleet.triggerAuthName" -}}
{{- printf "%s-temporal" (include "temporal-fleet.fullname" . | trunc 54 | trimSuffix "-") -}}
{{- end }}
