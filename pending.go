package ironpool

// Pending names the backend side effect the reconciler still owes a node.
// It is stored with the node (the pending column), so that what is owed
// survives restarts and leader changes; the reconciler works until the
// node's Pending is empty again.
type Pending string

// Pending side effects.
const (
	// PendingNone: the node is in sync with its backend.
	PendingNone Pending = ""
	// PendingCheckout: hand an allocated node over in the backend as the
	// allocation's mode says (handoff: maintenance on; lessee: lessee set).
	PendingCheckout Pending = "checkout"
	// PendingClean: clean a released node (a local clean command, or undo
	// the checkout and let the backend clean) before it is available.
	PendingClean Pending = "clean"
	// PendingRegister: enroll the pool node into the backend.
	PendingRegister Pending = "register"
	// PendingDeploy: write the allocation's deploy spec (stored with the
	// allocation) to the node and bring it to active.
	PendingDeploy Pending = "deploy"
	// PendingUndeploy: tear down what a deploy put on the node; it stays in
	// its allocation.
	PendingUndeploy Pending = "undeploy"
)

// PendingWork lists every side effect the reconciler may owe (and
// PendingNone): the OpenAPI enum and the metrics' work label read it.
var PendingWork = []Pending{PendingNone, PendingCheckout, PendingClean, PendingRegister, PendingDeploy, PendingUndeploy}
