package policy

// NearestKnownName returns the name of known that s is most likely a typo
// of (a case difference, or a few edits), "" when none is near: the "did
// you mean" of the verbs that take a datacenter argument.
func NearestKnownName(s string, known []string) string { return closest(s, known) }
