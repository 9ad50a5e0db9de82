{{- /* The queues model: values merged per queue and per build into the units that run, their images. */ -}}
{{/*
Deep merge of two maps, returned as JSON: (list base override). Maps merge key by key; any other
value of the override replaces the base's, including false, 0 and "" (unlike sprig's merge and
mergeOverwrite, which treat those as unset, so `replicas: 0` or `enabled: false` on a queue would
silently keep the default). A null in the override keeps the base value. Lists are replaced whole.
*/}}
{{- define "temporal-fleet.deepMerge" -}}
{{- $out := deepCopy (index . 0) -}}
{{- range $key, $value := (index . 1) -}}
{{- $base := get $out $key -}}
{{- if and (kindIs "map" $value) (kindIs "map" $base) -}}
{{- $_ := set $out $key (include "temporal-fleet.deepMerge" (list $base $value) | fromJson) -}}
{{- else if not (kindIs "invalid" $value) -}}
{{- $_ := set $out $key $value -}}
{{- end -}}
{{- end -}}
{{- toJson $out -}}
{{- end }}

{{/*
An image reference from an image block ({repository, tag, digest}) of queue `name`, as JSON
{"ref": ..., "tag": ...}. Arguments: dict "root" $ "name" queue "image" block "who" message prefix
(and "hint": where to give the digest, for a build).
*/}}
{{- define "temporal-fleet.imageRef" -}}
{{- $root := .root -}}
{{- $repository := .image.repository -}}
{{- if not $repository -}}
{{- if not $root.Values.image.registry -}}
{{- fail (printf "%s has no image: set image.registry (images are <registry>/%s<queue>) or queues.%s.image.repository" .who $root.Values.image.repositoryPrefix .name) -}}
{{- end -}}
{{- $repository = printf "%s/%s%s" (trimSuffix "/" $root.Values.image.registry) $root.Values.image.repositoryPrefix .name -}}
{{- end -}}
{{- $tag := .image.tag | default $root.Chart.AppVersion -}}
{{- $ref := printf "%s:%s" $repository $tag -}}
{{- if .image.digest -}}
{{- $ref = printf "%s@%s" $ref .image.digest -}}
{{- else if $root.Values.image.requireDigest -}}
{{- $hint := .hint | default (printf "e.g. --set queues.%s.image.digest=sha256:..." .name) -}}
{{- fail (printf "%s: image.digest is required (image.requireDigest): pin the image as sha256:<64 hex digits>, %s" .who $hint) -}}
{{- end -}}
{{- toJson (dict "ref" $ref "tag" $tag) -}}
{{- end }}

{{/*
The registered queues, as JSON: a map from name to the queue's registry fields (files/queues.yaml,
generated from the queue registry by `make sync`: taskQueue, workflowTypes, keepsState, shape)
and its values (.Values.queues.<name>). Fails for a queue in values the registry lacks, and for a
registry field that values set to anything but the registry's value.
*/}}
{{- define "temporal-fleet.queues" -}}
{{- $registry := .Files.Get "files/queues.yaml" | fromYaml -}}
{{- if hasKey $registry "Error" -}}
{{- fail (printf "files/queues.yaml is not valid YAML: %s" $registry.Error) -}}
{{- end -}}
{{- $values := .Values.queues | default dict -}}
{{- range $name := keys $values | sortAlpha -}}
{{- if not (hasKey $registry $name) -}}
{{- fail (printf "queues.%s: no queue %s is registered (files/queues.yaml, from the registry: %s); run `make sync` after adding or removing a queue" $name $name (keys $registry | sortAlpha | join ", ")) -}}
{{- end -}}
{{- end -}}
{{- $queues := dict -}}
{{- range $name, $registered := $registry -}}
{{- $own := get $values $name | default dict -}}
{{- range $key, $value := $registered -}}
{{- if and (hasKey $own $key) (ne (toJson (get $own $key)) (toJson $value)) -}}
{{- fail (printf "queues.%s.%s: %s is not the registry's %s (files/queues.yaml); values cannot change it" $name $key (toJson (get $own $key)) (toJson $value)) -}}
{{- end -}}
{{- end -}}
{{- $_ := set $queues $name (merge (deepCopy $own) $registered) -}}
{{- end -}}
{{- toJson $queues -}}
{{- end }}

{{/*
One queue's effective settings, as JSON: .Values.defaults deep-merged with the queue's entry of
temporal-fleet.queues (its registry fields and .Values.queues.<name>),
plus name, objectName, imageRef, imageTag and the default command, and the queue's workloads:

- versioned: whether its workers run with Worker Deployment Versioning (a builds list, or
  workerController.enabled);
- deploymentName: the Worker Deployment's name in Temporal (the queue's name; with the
  worker controller, <namespace>/<object name>, the name the controller gives it);
- units: the Deployments the chart renders, each with the queue's settings, its own
  objectName, image, replicas and autoscaling, buildId ("" unversioned) and target (the build
  rollout.target names, or the last one). Without builds, one unit: the queue itself. With
  workerController.enabled, none (the controller creates them);
- controllerUnit: with workerController.enabled, the unit of the WorkerDeployment's template;
- migrateUnit: the unit whose image runs the queue's schema migrations (the newest build:
  its revisions include every older build's, so a rollback to an older target still finds
  the schema known);
- targetBuildId, buildIds.

A queue that keeps state (keepsState, from the registry) without database.existingSecret fails
if it would run more than one pod (checkEmbeddedState).

Fails with a message naming the queue and the value to fix for what the schema cannot express.
Arguments: dict "root" $ "name" queue.
*/}}
{{- define "temporal-fleet.queue" -}}
{{- $root := .root -}}
{{- $name := .name -}}
{{- $who := printf "queue %s" $name -}}
{{- $wc := $root.Values.workerController.enabled -}}
{{- $q := include "temporal-fleet.deepMerge" (list $root.Values.defaults (get (include "temporal-fleet.queues" $root | fromJson) $name)) | fromJson -}}
{{- $_ := set $q "name" $name -}}
{{- $_ := set $q "objectName" (include "temporal-fleet.queueObjectName" (dict "root" $root "name" $name)) -}}
{{- include "temporal-fleet.checkKeyringEnv" (dict "root" $root "q" $q) -}}
{{- if not $q.builds -}}
{{- /* (A versioned queue's image is its rollout target's, set below.) */ -}}
{{- $image := include "temporal-fleet.imageRef" (dict "root" $root "name" $name "image" $q.image "who" $who) | fromJson -}}
{{- $_ := set $q "imageRef" $image.ref -}}
{{- $_ := set $q "imageTag" $image.tag -}}
{{- end -}}
{{- if not $q.command -}}
{{- $_ := set $q "command" (list "fleet" "worker" $name) -}}
{{- end -}}
{{- include "temporal-fleet.checkAutoscaling" (dict "who" $who "a" $q.autoscaling "resources" $q.resources) -}}
{{- /* Builds: ids unique, their object names too; the rollout target one of them. */ -}}
{{- $builds := $q.builds | default list -}}
{{- $ids := list -}}
{{- $suffixes := dict -}}
{{- range $b := $builds -}}
{{- $id := toString $b.buildId -}}
{{- if has $id $ids -}}
{{- fail (printf "%s: build %s is listed twice in builds (build ids are unique)" $who $id) -}}
{{- end -}}
{{- $suffix := include "temporal-fleet.buildSuffix" $id -}}
{{- if hasKey $suffixes $suffix -}}
{{- fail (printf "%s: builds %s and %s would share the object name suffix %q (build ids must differ in more than case and punctuation)" $who (get $suffixes $suffix) $id $suffix) -}}
{{- end -}}
{{- $_ := set $suffixes $suffix $id -}}
{{- $ids = append $ids $id -}}
{{- end -}}
{{- $r := $q.rollout -}}
{{- $target := "" -}}
{{- if $ids -}}
{{- $target = $r.target | default (last $ids) -}}
{{- if not (has $target $ids) -}}
{{- fail (printf "%s: rollout.target %q is not one of its builds (%s)" $who $target (join ", " $ids)) -}}
{{- end -}}
{{- else if $r.target -}}
{{- fail (printf "%s: rollout.target %q is set but the queue has no builds" $who $r.target) -}}
{{- end -}}
{{- if and (eq $r.mode "progressive") (not (kindIs "invalid" $r.rampPercentage)) (not $wc) -}}
{{- fail (printf "%s: rollout.rampPercentage is for rollout.mode promote; mode progressive ramps through rollout.progressive.steps" $who) -}}
{{- end -}}
{{- $_ := set $q "buildIds" $ids -}}
{{- $_ := set $q "targetBuildId" $target -}}
{{- $_ := set $q "versioned" (or $wc (gt (len $ids) 0)) -}}
{{- $_ := set $q "deploymentName" (ternary (printf "%s/%s" $root.Release.Namespace $q.objectName) $name $wc) -}}
{{- /* The units: one per build (the queue's settings, the build's overrides), or the queue. */ -}}
{{- $base := omit $q "builds" -}}
{{- $units := list -}}
{{- if not $ids -}}
{{- $units = list (merge (dict "buildId" "" "target" true) (deepCopy $base)) -}}
{{- end -}}
{{- range $b := $builds -}}
{{- $id := toString $b.buildId -}}
{{- $bwho := printf "%s, build %s" $who $id -}}
{{- $over := pick $b "image" "replicas" "autoscaling" -}}
{{- $bimg := $b.image | default dict -}}
{{- if and (or $bimg.tag $bimg.repository) (not $bimg.digest) -}}
{{- /* A build naming its own image is pinned by its own digest, never the queue's. */ -}}
{{- $_ := set $over "image" (merge (dict "digest" "") (deepCopy $bimg)) -}}
{{- end -}}
{{- $u := include "temporal-fleet.deepMerge" (list $base $over) | fromJson -}}
{{- $_ := set $u "buildId" $id -}}
{{- $_ := set $u "target" (eq $id $target) -}}
{{- $_ := set $u "objectName" (include "temporal-fleet.buildObjectName" (dict "root" $root "name" $name "buildId" $id)) -}}
{{- $hint := printf "in queues.%s.builds[].image.digest (a build naming its own image or tag never takes the queue's digest)" $name -}}
{{- $bimage := include "temporal-fleet.imageRef" (dict "root" $root "name" $name "image" $u.image "who" $bwho "hint" $hint) | fromJson -}}
{{- $_ := set $u "imageRef" $bimage.ref -}}
{{- $_ := set $u "imageTag" $bimage.tag -}}
{{- include "temporal-fleet.checkAutoscaling" (dict "who" $bwho "a" $u.autoscaling "resources" $u.resources) -}}
{{- $a := $u.autoscaling -}}
{{- if and (eq $a.kind "keda") (not $wc) (not $u.target) -}}
{{- /* A build that is not the target may still run pinned work: never scaled to zero. */ -}}
{{- $_ := set $a "minReplicas" (max 1 (int $a.minReplicas)) -}}
{{- if not $a.keda.versionBacklog -}}
{{- /* Without version-scoped backlog it would scale on the target's: fixed replicas. */ -}}
{{- $_ := set $a "kind" "none" -}}
{{- $_ := set $u "replicas" $a.minReplicas -}}
{{- end -}}
{{- end -}}
{{- if eq $id $target -}}
{{- if and (not $wc) $r.promote (eq $a.kind "none") (eq (int $u.replicas) 0) -}}
{{- fail (printf "%s: the rollout target has replicas 0, so the promotion hook would wait for its pollers in vain: give it replicas, or set rollout.promote false" $bwho) -}}
{{- end -}}
{{- $_ := set $q "imageRef" $u.imageRef -}}
{{- $_ := set $q "imageTag" $u.imageTag -}}
{{- $_ := set $q "targetUnit" $u -}}
{{- end -}}
{{- $units = append $units $u -}}
{{- end -}}
{{- /* The unit whose image migrates the schema: the newest build's (or the queue's). */ -}}
{{- $_ := set $q "migrateUnit" (last $units) -}}
{{- if and $q.keepsState (not $root.Values.database.existingSecret) -}}
{{- include "temporal-fleet.checkEmbeddedState" (dict "who" $who "units" $units) -}}
{{- end -}}
{{- if $wc -}}
{{- $_ := set $q "controllerUnit" (ternary $q.targetUnit (first $units) (gt (len $ids) 0)) -}}
{{- $_ := set $q "units" list -}}
{{- include "temporal-fleet.checkController" (dict "root" $root "q" $q) -}}
{{- else -}}
{{- $_ := set $q "units" $units -}}
{{- end -}}
{{- $_ := unset $q "targetUnit" -}}
{{- toJson $q -}}
{{- end }}

{{/*
Names of the enabled queues, sorted, as JSON (a list).
*/}}
{{- define "temporal-fleet.enabledQueues" -}}
{{- $names := list -}}
{{- $queues := include "temporal-fleet.queues" . | fromJson -}}
{{- range $name := keys $queues | sortAlpha -}}
{{- $q := get $queues $name -}}
{{- if not (and (hasKey $q "enabled") (kindIs "bool" $q.enabled)) -}}
{{- if $.Values.defaults.enabled -}}
{{- $names = append $names $name -}}
{{- end -}}
{{- else if $q.enabled -}}
{{- $names = append $names $name -}}
{{- end -}}
{{- end -}}
{{- toJson $names -}}
{{- end }}

{{/*
Names of the enabled queues that keep state, sorted, as JSON (a list): the queues whose workers
get DATABASE_URL and whose schemas the migration hook applies.
*/}}
{{- define "temporal-fleet.statefulQueues" -}}
{{- $names := list -}}
{{- $queues := include "temporal-fleet.queues" . | fromJson -}}
{{- range $name := include "temporal-fleet.enabledQueues" . | fromJsonArray -}}
{{- $q := get $queues $name -}}
{{- if $q.keepsState -}}
{{- $names = append $names $name -}}
{{- end -}}
{{- end -}}
{{- toJson $names -}}
{{- end }}

{{/*
Whether the release uses the shared database: database.existingSecret is set and an enabled
queue keeps state ("true" or "").
*/}}
{{- define "temporal-fleet.usesDatabase" -}}
{{- if and .Values.database.existingSecret (include "temporal-fleet.statefulQueues" . | fromJsonArray) -}}true{{- end -}}
{{- end }}

{{/*
The image of a pod that runs only the fleet CLI (the namespace Job, the codec server): its own
image block if it names a repository (tag: the chart's appVersion by default; a digest, which
image.requireDigest requires), else the first enabled queue's image (every queue image has the
CLI). Arguments: dict "root" $ "image" block "who" values path ("namespaceJob").
*/}}
{{- define "temporal-fleet.cliImage" -}}
{{- $root := .root -}}
{{- $image := .image -}}
{{- if $image.repository -}}
{{- $ref := printf "%s:%s" $image.repository ($image.tag | default $root.Chart.AppVersion) -}}
{{- if $image.digest -}}
{{- $ref = printf "%s@%s" $ref $image.digest -}}
{{- else if $root.Values.image.requireDigest -}}
{{- fail (printf "%s: image.digest is required (image.requireDigest): set %s.image.digest=sha256:..." .who .who) -}}
{{- end -}}
{{- $ref -}}
{{- else -}}
{{- $queues := include "temporal-fleet.enabledQueues" $root | fromJsonArray -}}
{{- if not $queues -}}
{{- fail (printf "%s has no image: set %s.image.repository (no queue is enabled to borrow an image from)" .who .who) -}}
{{- end -}}
{{- (include "temporal-fleet.queue" (dict "root" $root "name" (first $queues)) | fromJson).imageRef -}}
{{- end -}}
{{- end }}
