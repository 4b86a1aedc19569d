// Package ironic is ironpool's backend for OpenStack Ironic: it lists and
// reads Ironic's nodes, checks them out and in (maintenance, lessee), enrolls
// pool nodes into Ironic and removes them, deploys and undeploys images,
// inspects, powers, adopts, and drives Ironic's own allocation API. It speaks
// to Ironic through gophercloud v2 and turns every failure into a coded
// *ironpool.Error, so callers never parse Ironic's replies.
//
// # Microversions
//
// Every request carries X-OpenStack-Ironic-API-Version: 1.65 (Baseline).
// Connect reads the server's maximum first and refuses servers below it, so a
// too-old Ironic fails at start-up with one clear message instead of with a
// 406 in the middle of a checkout. Pinning one version (rather than "latest")
// keeps reply shapes and state-machine behaviour the same on every server.
// What needs which version:
//
//   - 1.11: nodes are created in "enroll" and must be managed and provided,
//     which is what Register does; below it they would appear "available"
//     without a power or BMC check.
//   - 1.17: the "adopt" verb (Adopt).
//   - 1.21: node resource_class (flavors, ManageableNodes, allocations).
//   - 1.37: node traits (PUT /v1/nodes/{id}/traits).
//   - 1.50: node owner, shown in NodeInfo.
//   - 1.52: Ironic's allocation API (CreateAllocation, DeleteAllocation).
//   - 1.65: node lessee (SetLessee, the "lessee" checkout mode) — the newest
//     feature used, hence the baseline.
//
// Client.MaxVersion reports what the server offers, for callers that want to
// probe newer features (1.73 deploy/undeploy verb aliases, 1.82 shards); this
// package does not need them.
//
// # Work-arounds
//
// gophercloud's list options cannot express maintenance=false or
// associated=false (zero values are dropped) and have no lessee filter, so
// list queries are built here. Its baremetal pages look for "nodes_links",
// but Ironic answers with a "next" URL, and that URL drops filter parameters;
// listing therefore pages by marker itself. Its JSON-patch operation omits a
// false or empty value, so patches are built here too. Asking Ironic 21.4 for
// fields=allocation_uuid fails with HTTP 500, so list queries leave it out.
//
// Ironic answers errors double-encoded ({"error_message": "<JSON string>"});
// the inner faultstring becomes the message. A 409 "node is locked" (the
// conductor's periodic tasks hold node locks briefly) and a 503 are retried
// with backoff for up to about ten seconds instead of being surfaced. A 503
// on POST /v1/allocations is not retried: Ironic may have created the
// allocation anyway, so CreateAllocation cleans it up instead.
package ironic
