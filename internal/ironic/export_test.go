package ironic

// Exports for the external tests in package ironic_test (allocations_test.go),
// which use internal/ironictest and so cannot live in package ironic.
var (
	NewTestClient = newClient
	MakeTestNodes = makeNodes
	MustGet       = mustGet
	WantCode      = wantCode
	NodeName      = nodeName
	RunID         = runID
	FakeIronic    = fakeIronic
)

// NodeSpec is nodeSpec for the external tests.
type NodeSpec = nodeSpec
