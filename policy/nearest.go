package policy

// DidYouMean is the hint every verb gives for a name that is not known:
// "did you mean pod-2? " (with the trailing space, to go before the list
// of known names), or "" when no known name is near.
func DidYouMean(s string, known []string) string {
	if k := closest(s, known); k != "" {
		return "did you mean " + k + "? "
	}
	return ""
}
