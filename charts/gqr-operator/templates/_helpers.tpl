{{/* Names, labels and the operator's RBAC rules. */}}

{{- define "gqr-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "gqr-operator.fullname" -}}
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

{{/* Cluster-scoped objects carry the release namespace too: two releases of the same name in
two namespaces must not fight over one ClusterRole. */}}
{{- define "gqr-operator.clusterName" -}}
{{- printf "%s-%s" (include "gqr-operator.fullname" .) .Release.Namespace | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "gqr-operator.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "gqr-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: gqr
{{- end }}

{{- define "gqr-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "gqr-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "gqr-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "gqr-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* One child image reference: (list $root "gateway") -> registry/repository@digest or :tag
(an empty tag: the chart's appVersion); childImages.registry, when set, replaces the registry. */}}
{{- define "gqr-operator.childImage" -}}
{{- $root := index . 0 }}
{{- $img := index $root.Values.childImages (index . 1) }}
{{- $registry := $root.Values.childImages.registry | default $img.registry }}
{{- $repo := ternary $img.repository (printf "%s/%s" $registry $img.repository) (empty $registry) }}
{{- if $img.digest }}
{{- printf "%s@%s" $repo $img.digest }}
{{- else }}
{{- printf "%s:%s" $repo ($img.tag | default $root.Chart.AppVersion) }}
{{- end }}
{{- end }}

{{/* The children's images, pull policy and pull secrets, as the operator reads them
(gqr_operator.resources.defaults). */}}
{{- define "gqr-operator.childImageEnv" -}}
{{- range $key, $env := dict "gateway" "GATEWAY" "ctrPredictor" "CTR_PREDICTOR" "trainer" "TRAINER" "tgi" "TGI" "vllm" "VLLM" "milvus" "MILVUS" "storageInitializer" "STORAGE_INITIALIZER" }}
- name: GQR_IMAGE_{{ $env }}
  value: {{ include "gqr-operator.childImage" (list $ $key) | quote }}
{{- end }}
- name: GQR_IMAGE_PULL_POLICY
  value: {{ .Values.childImages.pullPolicy | quote }}
- name: GQR_IMAGE_PULL_SECRETS
  value: {{ join "," .Values.childImages.pullSecrets | quote }}
{{- end }}

{{- define "gqr-operator.peeringName" -}}
{{- default (include "gqr-operator.fullname" .) .Values.peering.name }}
{{- end }}

{{/* The namespaces the operator watches (namespaced mode), as a list. */}}
{{- define "gqr-operator.watchNamespaces" -}}
{{- $ns := .Values.watchNamespaces | default (list .Release.Namespace) }}
{{- toJson $ns }}
{{- end }}

{{/* Refuses value combinations that would deploy a broken operator, naming what to change. */}}
{{- define "gqr-operator.validate" -}}
{{- if and (gt (int .Values.replicas) 1) (not .Values.peering.enabled) }}
{{- fail (printf "replicas: %d needs peering.enabled=true: the replicas coordinate through kopf peering (set --set peering.enabled=true, or replicas=1)" (int .Values.replicas)) }}
{{- end }}
{{- if and .Values.clusterWide .Values.watchNamespaces }}
{{- fail "clusterWide=true watches every namespace; leave watchNamespaces empty (or set clusterWide=false)" }}
{{- end }}
{{- end }}

{{/*
The operator's RBAC rules. They must equal gqr_operator.rbac (RULES, PEERING_RULES,
CLUSTER_RULES, CLUSTER_PEERING_RULES) exactly: tests/unit/helm/test_chart_rbac_matches.py
renders the chart and compares its Roles and ClusterRoles with rbac.roles(...).
*/}}
{{- define "gqr-operator.rules" -}}
- apiGroups: ["gqr.dev"]
  resources: ["gqrdeployments"]
  verbs: ["get", "list", "watch", "patch"]
- apiGroups: ["gqr.dev"]
  resources: ["gqrdeployments/status"]
  verbs: ["get", "patch"]
- apiGroups: ["apps"]
  resources: ["deployments"]
  verbs: ["get", "list", "patch", "delete"]
- apiGroups: ["apps"]
  resources: ["statefulsets"]
  verbs: ["list", "patch", "delete"]
- apiGroups: [""]
  resources: ["services", "configmaps"]
  verbs: ["list", "patch", "delete"]
- apiGroups: ["policy"]
  resources: ["poddisruptionbudgets"]
  verbs: ["list", "patch", "delete"]
- apiGroups: ["networking.k8s.io"]
  resources: ["networkpolicies"]
  verbs: ["list", "patch", "delete"]
- apiGroups: ["serving.kserve.io"]
  resources: ["inferenceservices"]
  verbs: ["list", "patch", "delete"]
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["create"]
- apiGroups: ["batch"]
  resources: ["jobs"]
  verbs: ["get", "create"]
- apiGroups: ["jobset.x-k8s.io"]
  resources: ["jobsets"]
  verbs: ["get", "create"]
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["list"]
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create"]
- apiGroups: ["events.k8s.io"]
  resources: ["events"]
  verbs: ["create"]
{{- end }}

{{- define "gqr-operator.peeringRules" -}}
- apiGroups: ["kopf.dev"]
  resources: ["kopfpeerings"]
  verbs: ["get", "list", "watch", "patch"]
{{- end }}

{{- define "gqr-operator.clusterRules" -}}
- apiGroups: [""]
  resources: ["namespaces"]
  verbs: ["list", "watch"]
- apiGroups: ["apiextensions.k8s.io"]
  resources: ["customresourcedefinitions"]
  verbs: ["list", "watch"]
{{- end }}

{{- define "gqr-operator.clusterPeeringRules" -}}
- apiGroups: ["kopf.dev"]
  resources: ["clusterkopfpeerings"]
  verbs: ["get", "list", "watch", "patch"]
{{- end }}
