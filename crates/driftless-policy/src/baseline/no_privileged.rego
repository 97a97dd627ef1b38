# no-privileged: no container runs privileged.
package driftless.baseline.no_privileged

import rego.v1

import data.driftless.lib.workloads

deny contains msg if {
	some c in workloads.containers
	c.spec.securityContext.privileged == true
	msg := sprintf("%s %s runs privileged (securityContext.privileged: true)", [c.kind, c.spec.name])
}
