# resources-requests: every container and init container requests cpu and memory.
# A limit without a request counts: Kubernetes then sets the request to the limit.
package driftless.baseline.resources_requests

import rego.v1

import data.driftless.lib.workloads

_sets(container, resource) if container.resources.requests[resource]

_sets(container, resource) if container.resources.limits[resource]

deny contains msg if {
	some c in workloads.containers
	c.kind != "ephemeral container"
	some resource in ["cpu", "memory"]
	not _sets(c.spec, resource)
	msg := sprintf("%s %s sets no %s request (resources.requests.%s)", [c.kind, c.spec.name, resource, resource])
}
