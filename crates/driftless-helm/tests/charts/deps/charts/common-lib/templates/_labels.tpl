{{- define "common-lib.labels" -}}
app.kubernetes.io/part-of: {{ .Release.Name }}
app.kubernetes.io/component: {{ .Chart.Name }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- with .Values.global }}
example.org/region: {{ .region | default "none" }}
{{- end }}
{{- end -}}

{{- define "common-lib.configmap" -}}
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-{{ .Chart.Name }}-lib
  labels:
    {{- include "common-lib.labels" . | nindent 4 }}
data:
  from: library
{{- end -}}
