# Shared by every baseline policy: the pod spec and containers of an object, whatever
# workload kind carries them.
package driftless.lib.workloads

import rego.v1

_template_kinds := {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "ReplicationController", "Job"}

# The pod spec of a Pod, of a workload's pod template, of a CronJob's job template, or of a
# PodTemplate. Undefined for every other object.
pod_spec := input.spec if input.kind == "Pod"

pod_spec := input.spec.template.spec if input.kind in _template_kinds

pod_spec := input.spec.jobTemplate.spec.template.spec if input.kind == "CronJob"

pod_spec := input.template.spec if input.kind == "PodTemplate"

# Every container of the pod spec as {"kind": "container" | "init container" |
# "ephemeral container", "spec": <the container>}.
containers contains {"kind": "container", "spec": c} if some c in pod_spec.containers

containers contains {"kind": "init container", "spec": c} if some c in pod_spec.initContainers

containers contains {"kind": "ephemeral container", "spec": c} if some c in pod_spec.ephemeralContainers
