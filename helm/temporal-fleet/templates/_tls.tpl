{{- /* mTLS to the Temporal server: where the client certificate and CA are mounted, their volumes. */ -}}
{{/*
Mount points of the Temporal TLS files from existing Secrets.
*/}}
{{- define "temporal-fleet.tlsClientDir" -}}/etc/temporal/tls/client{{- end }}
{{- define "temporal-fleet.tlsCaDir" -}}/etc/temporal/tls/ca{{- end }}

{{/*
Where the CA bundle is mounted in pods the controller creates: outside /etc/temporal/tls, where
the controller mounts the Connection's mTLS Secret.
*/}}
{{- define "temporal-fleet.controllerCaDir" -}}/etc/temporal/ca{{- end }}

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
