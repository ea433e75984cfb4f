{{- define "modelattest.name" -}}{{ .Release.Name }}{{- end -}}
{{- define "modelattest.labels" -}}
app.kubernetes.io/name: modelattest-admission
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ .Chart.Name }}-{{ .Chart.Version }}
{{- end -}}
{{- define "modelattest.selector" -}}
app.kubernetes.io/name: modelattest-admission
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}
