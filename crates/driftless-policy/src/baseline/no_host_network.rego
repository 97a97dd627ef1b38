# no-host-network: no pod shares its node's network namespace.
package driftless.baseline.no_host_network

import rego.v1

import data.driftless.lib.workloads

deny contains msg if {
	workloads.pod_spec.hostNetwork == true
	msg := "pod uses the host network (hostNetwork: true)"
}
