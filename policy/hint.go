package policy

import (
	"strings"
)

// unknownDatacenterDetail explains that dc is not a known datacenter,
// suggests the closest known one and lists them all.
func unknownDatacenterDetail(dc string, known []string, policy, label string) string {
	var b strings.Builder
	if dc == "" {
		b.WriteString("empty datacenter")
	} else {
		b.WriteString("unknown datacenter ")
		b.WriteString(strconvQuote(dc))
	}
	if len(known) == 0 {
		b.WriteString(": no datacenters are known; list them in spec.datacenters of PlacementPolicy ")
		b.WriteString(policy)
		b.WriteString(" or label the nodes with ")
		b.WriteString(label)
		return b.String()
	}
	b.WriteString(": ")
	b.WriteString(DidYouMean(dc, known))
	b.WriteString("known datacenters: ")
	b.WriteString(strings.Join(known, ", "))
	return b.String()
}

func strconvQuote(s string) string { return `"` + strings.ReplaceAll(s, `"`, `\"`) + `"` }

// closest returns the known name nearest to s by edit distance, if it is
// near enough to be a likely typo: a case difference, or at most a third
// of the length (at least 2) edits away.
func closest(s string, known []string) string {
	best, bestD := "", -1
	for _, k := range known {
		if strings.EqualFold(s, k) {
			return k
		}
		d := editDistance(s, k)
		if bestD < 0 || d < bestD {
			best, bestD = k, d
		}
	}
	limit := len(s) / 3
	if limit < 2 {
		limit = 2
	}
	if bestD >= 0 && bestD <= limit && bestD < len(s) {
		return best
	}
	return ""
}

// editDistance is the Levenshtein distance between a and b, in bytes.
func editDistance(a, b string) int {
	if len(a) < len(b) {
		a, b = b, a
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
