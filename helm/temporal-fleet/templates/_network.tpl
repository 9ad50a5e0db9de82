{{- /* NetworkPolicy egress rules several policies share. */ -}}
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
