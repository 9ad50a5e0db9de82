{{- /* Payload encryption: the keyring Secret's mount and variables, and the codec server's names and checks. */ -}}
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
