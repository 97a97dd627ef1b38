# no-host-path: no pod mounts a directory of its node, and no PersistentVolume is a hostPath.
package driftless.baseline.no_host_path

import rego.v1

import data.driftless.lib.workloads

deny contains msg if {
	some v in workloads.pod_spec.volumes
	v.hostPath
	msg := sprintf("volume %s mounts the host path %s", [v.name, object.get(v.hostPath, "path", "")])
}

deny contains msg if {
	input.kind == "PersistentVolume"
	input.spec.hostPath
	msg := sprintf("PersistentVolume uses the host path %s", [object.get(input.spec.hostPath, "path", "")])
}
