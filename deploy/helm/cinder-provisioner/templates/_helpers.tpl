{{/* Name of the chart, overridable with nameOverride. */}}
{{- define "cinder-provisioner.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name: the release name, with the chart name unless it already has it. */}}
{{- define "cinder-provisioner.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else if contains (include "cinder-provisioner.name" .) .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name (include "cinder-provisioner.name" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{- define "cinder-provisioner.selectorLabels" -}}
app.kubernetes.io/name: {{ include "cinder-provisioner.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "cinder-provisioner.labels" -}}
{{ include "cinder-provisioner.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end }}

{{- define "cinder-provisioner.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "cinder-provisioner.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required with serviceAccount.create=false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* Namespace of the CHAP Secrets: secretNamespace, else the release's. */}}
{{- define "cinder-provisioner.secretNamespace" -}}
{{- default .Release.Namespace .Values.secretNamespace }}
{{- end }}
