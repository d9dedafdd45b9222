{{/* Prefix of every object name: fullnameOverride, else the release name. */}}
{{- define "ccproxy.fullname" -}}
{{- default .Release.Name .Values.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels of every object; "component" is operator, proxy or admin. */}}
{{- define "ccproxy.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
{{ include "ccproxy.selectorLabels" . }}
{{- end -}}

{{- define "ccproxy.selectorLabels" -}}
app.kubernetes.io/name: claude-code-proxy
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* By digest when one is given: the exact image that was scanned, whatever the tag now points at. */}}
{{- define "ccproxy.image" -}}
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ default .Chart.AppVersion .Values.image.tag }}
{{- end -}}
{{- end -}}

{{/* Non-root, no privilege escalation, nothing writable but the mounted emptyDirs. */}}
{{- define "ccproxy.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
fsGroup: 10001
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "ccproxy.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: [ALL]
{{- end -}}

{{/*
`config` as env. Helm reads YAML numbers as float64, and toString would print 1800000 as
"1.8e+06"; the schema allows only integers there, so they are printed as int64.
*/}}
{{- define "ccproxy.configEnv" -}}
{{- range $name, $value := . }}
- name: {{ $name }}
  value: {{ ternary ($value | int64 | toString) ($value | toString) (kindIs "float64" $value) | quote }}
{{- end }}
{{- end -}}

{{/* One variable from a Secret key named like the variable. */}}
{{- define "ccproxy.secretEnv" -}}
- name: {{ .name }}
  valueFrom:
    secretKeyRef:
      name: {{ .secret }}
      key: {{ .name }}
      {{- if .optional }}
      optional: true
      {{- end }}
{{- end -}}

{{/*
A runtime secret: with a Secrets Manager id (aws.secretIds) the process reads the value at start
(`<idName>`, core/src/runtime-secrets.ts) and no Kubernetes Secret is involved; else the key of
the existing Secret.
*/}}
{{- define "ccproxy.runtimeSecret" -}}
{{- if .id }}
- name: {{ .idName }}
  value: {{ .id | quote }}
{{- else }}
{{- include "ccproxy.secretEnv" . }}
{{- end }}
{{- end -}}

{{/* CCPROXY_KMS_KEY_ID: the value aws.kmsKeyId (a key id, not a secret), else the existing Secret's key. */}}
{{- define "ccproxy.kmsKeyEnv" -}}
{{- if .root.Values.aws.kmsKeyId }}
- name: CCPROXY_KMS_KEY_ID
  value: {{ .root.Values.aws.kmsKeyId | quote }}
{{- else }}
{{- include "ccproxy.secretEnv" (dict "name" "CCPROXY_KMS_KEY_ID" "secret" .root.Values.existingSecret.name "optional" .optional) }}
{{- end }}
{{- end -}}

{{/* Spread replicas over zones and nodes; best effort, so a small cluster still schedules them. */}}
{{- define "ccproxy.topologySpread" -}}
topologySpreadConstraints:
  - maxSkew: 1
    topologyKey: topology.kubernetes.io/zone
    whenUnsatisfiable: ScheduleAnyway
    labelSelector:
      matchLabels:
        {{- include "ccproxy.selectorLabels" . | nindent 8 }}
    matchLabelKeys: [pod-template-hash]
  - maxSkew: 1
    topologyKey: kubernetes.io/hostname
    whenUnsatisfiable: ScheduleAnyway
    labelSelector:
      matchLabels:
        {{- include "ccproxy.selectorLabels" . | nindent 8 }}
    matchLabelKeys: [pod-template-hash]
{{- end -}}

{{/* Probes on the process's own health endpoints; startup allows for migrations on first start. */}}
{{- define "ccproxy.probes" -}}
startupProbe:
  httpGet: { path: /healthz, port: http }
  periodSeconds: 2
  failureThreshold: 60
livenessProbe:
  httpGet: { path: /healthz, port: http }
  periodSeconds: 10
  timeoutSeconds: 3
  failureThreshold: 3
readinessProbe:
  httpGet: { path: /readyz, port: http }
  periodSeconds: 5
  timeoutSeconds: 3
  failureThreshold: 2
{{- end -}}
