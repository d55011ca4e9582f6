{{/* Names and labels shared by every object; `kilt webhook manifests` uses the same. */}}
{{- define "kilt.labels" -}}
app.kubernetes.io/name: kilt-webhook
app.kubernetes.io/part-of: kilt
{{- end }}

{{- define "kilt.selectorLabels" -}}
app.kubernetes.io/name: kilt-webhook
{{- end }}

{{/* The webhook's namespace: its own, never injected. */}}
{{- define "kilt.namespace" -}}
{{- $ns := .Release.Namespace -}}
{{- if or (eq $ns "default") (hasPrefix "kube-" $ns) -}}
{{- fail (printf "namespace %s: the webhook's namespace is never injected, so it needs one of its own (such as kilt-system)" $ns) -}}
{{- end -}}
{{- $ns -}}
{{- end }}

{{/* The recipes as a JSON list of {name, content}: the values' or the shipped Falco recipe. */}}
{{- define "kilt.recipes" -}}
{{- if .Values.recipes -}}
{{- range .Values.recipes -}}
{{- if not (regexMatch "^[-._a-zA-Z0-9]+$" (.name | default "")) -}}
{{- fail (printf "recipes: name %q: letters, digits, '-', '_' and '.' only (it is a ConfigMap key)" (.name | default "")) -}}
{{- end -}}
{{- if not .content -}}
{{- fail (printf "recipes: %s has no content" .name) -}}
{{- end -}}
{{- end -}}
{{- toJson .Values.recipes -}}
{{- else -}}
{{- if not (hasKey .Values.recipeConfig "agent_image") -}}
{{- fail "the shipped Falco recipe needs recipeConfig.agent_image: the agent image (deploy/images/build-agent-image.sh, docs/falco.md)" -}}
{{- end -}}
{{- toJson (list (dict "name" "falco.kilt.conf" "content" (.Files.Get "files/falco.kilt.conf"))) -}}
{{- end -}}
{{- end }}

{{/* SHA-256 of the recipes (name, byte length, text of each, in order), as
     `kilt webhook manifests` computes it: a change rolls the webhook's pods. */}}
{{- define "kilt.recipesHash" -}}
{{- $all := "" -}}
{{- range (include "kilt.recipes" . | fromJsonArray) -}}
{{- $all = printf "%s%s\n%d\n%s" $all .name (len .content) .content -}}
{{- end -}}
{{- sha256sum $all -}}
{{- end }}

{{- define "kilt.image" -}}
{{- $repo := required "image.repository is required: the image that runs kilt (deploy/images/build-webhook-image.sh builds it)" .Values.image.repository -}}
{{- printf "%s:%s" $repo (toString (.Values.image.tag | default .Chart.AppVersion)) -}}
{{- end }}

{{/* The Service's DNS names, the first one being what the API server asks for. */}}
{{- define "kilt.dnsNames" -}}
{{- $ns := include "kilt.namespace" . -}}
{{- toJson (list (printf "kilt-webhook.%s.svc" $ns) (printf "kilt-webhook.%s.svc.cluster.local" $ns) (printf "kilt-webhook.%s" $ns)) -}}
{{- end }}
