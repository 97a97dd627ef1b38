# no-latest-tag: every image names a tag other than `latest`, or is pinned by digest.
package driftless.baseline.no_latest_tag

import rego.v1

import data.driftless.lib.workloads

# The last path component of an image reference (`nginx:1.27` of
# `registry:5000/library/nginx:1.27`), so a registry port is never taken for a tag.
_last_component(image) := parts[count(parts) - 1] if parts := split(image, "/")

_pinned(image) if contains(image, "@")

_tag(image) := substring(last, indexof(last, ":") + 1, -1) if {
	last := _last_component(image)
	contains(last, ":")
}

deny contains msg if {
	some c in workloads.containers
	image := c.spec.image
	not _pinned(image)
	not _tag(image)
	msg := sprintf("%s %s uses an untagged image (%s)", [c.kind, c.spec.name, image])
}

deny contains msg if {
	some c in workloads.containers
	image := c.spec.image
	not _pinned(image)
	_tag(image) == "latest"
	msg := sprintf("%s %s uses the :latest tag (%s)", [c.kind, c.spec.name, image])
}
