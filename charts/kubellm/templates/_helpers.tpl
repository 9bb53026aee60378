{{- define "kubellm.labels" -}}
app.kubernetes.io/name: kubellm-operator
app.kubernetes.io/part-of: kubellm
{{- end }}
