{{/* Chart name. */}}
{{- define "spot-scheduler.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Full name, scoped to the release: <release>-<chart>, or <release> when it holds the chart name. */}}
{{- define "spot-scheduler.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 52 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 52 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 52 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "spot-scheduler.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "spot-scheduler.labels" -}}
helm.sh/chart: {{ include "spot-scheduler.chart" . }}
app.kubernetes.io/name: {{ include "spot-scheduler.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Selector labels of one component (scheduler, rebalancer, placeholder). Call with (list . "scheduler"). */}}
{{- define "spot-scheduler.selectorLabels" -}}
{{- $ctx := index . 0 -}}
app.kubernetes.io/name: {{ include "spot-scheduler.name" $ctx }}
app.kubernetes.io/instance: {{ $ctx.Release.Name }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}

{{- define "spot-scheduler.componentLabels" -}}
{{ include "spot-scheduler.labels" (index . 0) }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}

{{- define "spot-scheduler.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* Each component's ServiceAccount: <component>.serviceAccountName, else <fullname>-<component>.
serviceAccount.schedulerName and serviceAccount.rebalancerName are the deprecated names of the
same values (schedulerName read as spec.schedulerName): still honoured, and refused when they
disagree with the new ones. Call with (list . component). */}}
{{- define "spot-scheduler.serviceAccount" -}}
{{- $ctx := index . 0 -}}
{{- $component := index . 1 -}}
{{- $name := get (get $ctx.Values $component) "serviceAccountName" | default "" -}}
{{- $deprecated := get ($ctx.Values.serviceAccount | default dict) (printf "%sName" $component) | default "" -}}
{{- if and $name $deprecated (ne $name $deprecated) -}}
{{- fail (printf "serviceAccount.%sName (deprecated) is %q but %s.serviceAccountName is %q: set only %s.serviceAccountName" $component $deprecated $component $name $component) -}}
{{- end -}}
{{- default (printf "%s-%s" (include "spot-scheduler.fullname" $ctx) $component) (default $deprecated $name) -}}
{{- end -}}

{{- define "spot-scheduler.schedulerServiceAccount" -}}
{{- include "spot-scheduler.serviceAccount" (list . "scheduler") -}}
{{- end -}}

{{- define "spot-scheduler.rebalancerServiceAccount" -}}
{{- include "spot-scheduler.serviceAccount" (list . "rebalancer") -}}
{{- end -}}

{{/* The scheduler's Lease (in the release namespace). */}}
{{- define "spot-scheduler.schedulerLease" -}}
{{- default (include "spot-scheduler.fullname" .) .Values.scheduler.leaderElection.leaseName -}}
{{- end -}}

{{/* The rebalancer's Lease (in the release namespace). */}}
{{- define "spot-scheduler.rebalancerLease" -}}
{{- default (printf "%s-rebalancer" (include "spot-scheduler.fullname" .)) .Values.rebalancer.leaderElection.leaseName -}}
{{- end -}}

{{/* The reclaim history's ConfigMap (in the release namespace). */}}
{{- define "spot-scheduler.reclaimHistory" -}}
{{- printf "%s-reclaim-history" (include "spot-scheduler.fullname" .) -}}
{{- end -}}

{{- define "spot-scheduler.placeholderPriorityClass" -}}
{{- default (printf "%s-placeholder" (include "spot-scheduler.fullname" .)) .Values.placeholders.priorityClass.name -}}
{{- end -}}

{{/* The failback buffer's PriorityClass. */}}
{{- define "spot-scheduler.failbackBufferPriorityClass" -}}
{{- default (printf "%s-failback-buffer" (include "spot-scheduler.fullname" .)) .Values.rebalancer.failback.buffer.priorityClass.name -}}
{{- end -}}

{{/* Path of the KubeSchedulerConfiguration in the pods. */}}
{{- define "spot-scheduler.configPath" -}}
/etc/spot-scheduler/scheduler-config.yaml
{{- end -}}

{{/*
The KubeSchedulerConfiguration, built from values as a dict so that pass-through plugins and
plugin args merge into it, then rendered with toYaml.
*/}}
{{- define "spot-scheduler.schedulerConfig" -}}
{{- $s := .Values.scheduler -}}
{{- $extra := deepCopy ($s.extraPlugins | default dict) -}}
{{- $multi := list (dict "name" "SpotScore" "weight" (int $s.spotScore.weight)) -}}
{{- $multiDisabled := list -}}
{{- with $extra.multiPoint -}}
{{- $multi = concat $multi (.enabled | default list) -}}
{{- $multiDisabled = .disabled | default list -}}
{{- end -}}
{{- if $s.packWithinTier -}}
{{- /* Pack within a tier: MostAllocated (pluginConfig below) at weight 3 outweighs BalancedAllocation's preference for an empty node. */ -}}
{{- $multi = append $multi (dict "name" "NodeResourcesFit" "weight" 3) -}}
{{- end -}}
{{- if $s.placeholderPreemption.enabled -}}
{{- /* Every extension point of PlaceholderPreemption (its Filter keeps pods off worse tiers while placeholders hold room for them on a better one); postFilter below orders it first. */ -}}
{{- $multi = append $multi (dict "name" "PlaceholderPreemption") -}}
{{- end -}}
{{- $multiPoint := dict "enabled" $multi -}}
{{- if $multiDisabled }}{{ $_ := set $multiPoint "disabled" $multiDisabled }}{{ end -}}
{{- $plugins := dict "multiPoint" $multiPoint -}}
{{- $pp := $s.placeholderPreemption -}}
{{- $post := list -}}
{{- if $pp.enabled }}{{ $post = append $post (dict "name" "PlaceholderPreemption") }}{{ end -}}
{{- $post = append $post (dict "name" "SpotScore") -}}
{{- if or (not $pp.enabled) $pp.fallbackToDefaultPreemption }}{{ $post = append $post (dict "name" "DefaultPreemption") }}{{ end -}}
{{- with $extra.postFilter }}{{ $post = concat $post (.enabled | default list) }}{{ end -}}
{{- $_ := set $plugins "postFilter" (dict "enabled" $post "disabled" (list (dict "name" "*"))) -}}
{{- range $point, $set := $extra -}}
{{- if not (has $point (list "multiPoint" "postFilter")) }}{{ $_ := set $plugins $point $set }}{{ end -}}
{{- end -}}
{{- $ss := dict "spreadWeight" (int $s.spotScore.spreadWeight) -}}
{{- with $s.spotScore.tiers }}{{ $_ := set $ss "tiers" . }}{{ end -}}
{{- with $s.spotScore.defaultTier }}{{ $_ := set $ss "defaultTier" . }}{{ end -}}
{{- with $s.spotScore.atRiskTaints }}{{ $_ := set $ss "atRiskTaints" . }}{{ end -}}
{{- if not (kindIs "invalid" $s.spotScore.cordonedIsAtRisk) }}{{ $_ := set $ss "cordonedIsAtRisk" $s.spotScore.cordonedIsAtRisk }}{{ end -}}
{{- with $s.spotScore.poolLabelKeys }}{{ $_ := set $ss "poolLabelKeys" . }}{{ end -}}
{{- with $s.spotScore.poolTopologyKeys }}{{ $_ := set $ss "poolTopologyKeys" . }}{{ end -}}
{{- with $s.spotScore.defaultCapacityPolicy }}{{ $_ := set $ss "defaultCapacityPolicy" . }}{{ end -}}
{{- with $s.spotScore.prices }}{{ $_ := set $ss "prices" . }}{{ end -}}
{{- $rh := $s.spotScore.reclaimHistory -}}
{{- $_ := set $ss "reclaimHistory" (dict "namespace" .Release.Namespace "name" (include "spot-scheduler.reclaimHistory" .) "window" $rh.window "weight" (int $rh.weight)) -}}
{{- $pluginConfig := list (dict "name" "SpotScore" "args" $ss) -}}
{{- if $pp.enabled -}}
{{- $ppArgs := dict "placeholderPriorityBelow" (int $pp.placeholderPriorityBelow) -}}
{{- with $pp.placeholderSelector }}{{ $_ := set $ppArgs "placeholderSelector" . }}{{ end -}}
{{- $pluginConfig = append $pluginConfig (dict "name" "PlaceholderPreemption" "args" $ppArgs) -}}
{{- end -}}
{{- $userFit := false -}}
{{- range ($s.extraPluginConfig | default list) }}{{ if eq .name "NodeResourcesFit" }}{{ $userFit = true }}{{ end }}{{ end -}}
{{- if and $s.packWithinTier (not $userFit) -}}
{{- /* Fill started nodes of a tier before empty ones (docs/design.md); an extraPluginConfig entry for NodeResourcesFit replaces this one. */ -}}
{{- $pluginConfig = append $pluginConfig (dict "name" "NodeResourcesFit" "args" (dict "scoringStrategy" (dict "type" "MostAllocated" "resources" (list (dict "name" "cpu" "weight" 1) (dict "name" "memory" "weight" 1))))) -}}
{{- end -}}
{{- $pluginConfig = concat $pluginConfig ($s.extraPluginConfig | default list) -}}
{{- $le := $s.leaderElection -}}
{{- $leaderElection := dict "leaderElect" $le.enabled "resourceName" (include "spot-scheduler.schedulerLease" .) "resourceNamespace" .Release.Namespace "resourceLock" "leases" "leaseDuration" $le.leaseDuration "renewDeadline" $le.renewDeadline "retryPeriod" $le.retryPeriod -}}
{{- $profile := dict "schedulerName" .Values.schedulerName "plugins" $plugins "pluginConfig" $pluginConfig -}}
{{- $config := dict "apiVersion" "kubescheduler.config.k8s.io/v1" "kind" "KubeSchedulerConfiguration" "leaderElection" $leaderElection "profiles" (list $profile) -}}
{{- toYaml $config -}}
{{- end -}}

{{/*
RoleBinding in kube-system to the chart's Role reading the extension-apiserver-authentication
ConfigMap (client CA of delegated authentication). Call with (list . component serviceAccount).
*/}}
{{- define "spot-scheduler.authReaderBinding" -}}
{{- $ctx := index . 0 }}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: {{ include "spot-scheduler.fullname" $ctx }}-{{ index . 1 }}-auth-reader
  namespace: kube-system
  labels:
    {{- include "spot-scheduler.componentLabels" (list $ctx (index . 1)) | nindent 4 }}
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: Role
  name: {{ include "spot-scheduler.fullname" $ctx }}-auth-reader
subjects:
- kind: ServiceAccount
  name: {{ index . 2 }}
  namespace: {{ $ctx.Release.Namespace }}
{{- end -}}

{{/* Flags of the spot-rebalancer binary (cmd/rebalancer). */}}
{{- define "spot-scheduler.rebalancerArgs" -}}
{{- $c := .Values.rebalancer -}}
- --scheduler-config={{ include "spot-scheduler.configPath" . }}
- --profile={{ .Values.schedulerName }}
- --leader-elect={{ $c.leaderElection.enabled }}
- --leader-elect-resource-namespace={{ .Release.Namespace }}
- --leader-elect-resource-name={{ include "spot-scheduler.rebalancerLease" . }}
- --leader-elect-lease-duration={{ $c.leaderElection.leaseDuration }}
- --leader-elect-renew-deadline={{ $c.leaderElection.renewDeadline }}
- --leader-elect-retry-period={{ $c.leaderElection.retryPeriod }}
- --deletion-cost-qps={{ $c.deletionCost.qps }}
- --deletion-cost-burst={{ $c.deletionCost.burst }}
- --deletion-cost-workers={{ $c.deletionCost.workers }}
- --protect-policy-replicas={{ $c.deletionCost.protectPolicyReplicas }}
- --rebalance={{ $c.failback.enabled }}
- --dry-run={{ $c.failback.dryRun }}
- --rebalance-interval={{ $c.failback.interval }}
- --rebalance-debounce={{ $c.failback.debounce }}
- --rebalance-validation-delay={{ $c.failback.validationDelay }}
- --min-pod-age={{ $c.failback.minPodAge }}
- --disruption-budget={{ $c.failback.disruptionBudget }}
- --max-evictions-in-flight={{ $c.failback.maxEvictionsInFlight }}
- --eviction-workers={{ $c.failback.evictionWorkers }}
- --allow-local-storage={{ $c.failback.allowLocalStorage }}
- --pack-within-tier={{ and $c.failback.enabled $c.failback.packWithinTier }}
- --failback-buffer={{ and $c.failback.enabled $c.failback.buffer.enabled }}
- --failback-buffer-max-pods={{ $c.failback.buffer.maxPods }}
- --failback-buffer-namespace={{ .Release.Namespace }}
- --failback-buffer-priority-class={{ include "spot-scheduler.failbackBufferPriorityClass" . }}
- --failback-buffer-image={{ $c.failback.buffer.image.repository }}{{ with $c.failback.buffer.image.tag }}:{{ . }}{{ end }}
- --secure-port={{ $c.securePort }}
- --v={{ $c.logLevel }}
{{- with $c.extraArgs }}
{{ toYaml . }}
{{- end }}
{{- end -}}
