package policy

import "sort"

// Quorum returns how many of n voting members must agree: floor(n/2)+1.
// 0 means there is no quorum to form (n <= 0).
func Quorum(n int) int {
	if n <= 0 {
		return 0
	}
	return n/2 + 1
}

// FaultTolerance returns how many of n voting members may fail while a quorum
// remains: n - Quorum(n). Even sizes add nothing (3 and 4 both tolerate 1).
func FaultTolerance(n int) int {
	if n <= 0 {
		return 0
	}
	return n - Quorum(n)
}

// MaxPerDatacenter returns the most voting members one datacenter may hold
// so that losing it still leaves a quorum of n: floor((n-1)/2). 0 for n <= 1.
func MaxPerDatacenter(n int) int {
	if n <= 1 {
		return 0
	}
	return (n - 1) / 2
}

// Voter is one member of a quorum (an etcd member, say) as the quorum
// arithmetic sees it.
type Voter struct {
	// Name of the member.
	Name string
	// Node the member runs on, "" when unknown.
	Node string
	// Datacenter the member runs in, "" when unknown.
	Datacenter string
	// Healthy is true when the member answers now.
	Healthy bool
	// Learner is true for a non-voting member (etcd learner): it counts
	// neither in the cluster size nor in the quorum.
	Learner bool
}

// VotingMembers returns how many voters are not learners: the n of Quorum.
func VotingMembers(voters []Voter) int {
	n := 0
	for i := range voters {
		if !voters[i].Learner {
			n++
		}
	}
	return n
}

// SurvivesLoss reports whether the healthy, non-learner voters outside the
// lost datacenters still form a quorum of all non-learner voters. With no
// datacenter lost it says whether the cluster has quorum now. A cluster with
// no voters never survives.
func SurvivesLoss(voters []Voter, lost ...string) bool {
	n := VotingMembers(voters)
	if n == 0 {
		return false
	}
	left := 0
	for i := range voters {
		v := &voters[i]
		if v.Learner || !v.Healthy || contains(lost, v.Datacenter) {
			continue
		}
		left++
	}
	return left >= Quorum(n)
}

// SurvivesLossKnown is SurvivesLoss when some voters' datacenters are
// unknown (""): known is false when the verdict depends on where those
// voters are, that is when the cluster survives only if none of them is in
// the lost datacenters. survives is then the verdict with them outside.
func SurvivesLossKnown(voters []Voter, lost ...string) (survives, known bool) {
	survives = SurvivesLoss(voters, lost...)
	worst := SurvivesLoss(voters, append(append([]string{}, lost...), "")...)
	return survives, survives == worst
}

// UnknownVoters names the non-learner voters whose datacenter is unknown
// (""), in the order given.
func UnknownVoters(voters []Voter) []string {
	var out []string
	for i := range voters {
		if !voters[i].Learner && voters[i].Datacenter == "" {
			out = append(out, voters[i].Name)
		}
	}
	return out
}

// LossVerdicts returns, for every datacenter in datacenters and every
// datacenter a voter is in, whether the cluster survives losing it alone.
// Voters with an unknown datacenter ("") are never lost.
func LossVerdicts(voters []Voter, datacenters []string) map[string]bool {
	out := make(map[string]bool, len(datacenters))
	for _, dc := range datacenters {
		out[dc] = SurvivesLoss(voters, dc)
	}
	for i := range voters {
		if dc := voters[i].Datacenter; dc != "" {
			if _, ok := out[dc]; !ok {
				out[dc] = SurvivesLoss(voters, dc)
			}
		}
	}
	return out
}

// VotersPerDatacenter counts the non-learner voters of every datacenter.
func VotersPerDatacenter(voters []Voter) map[string]int {
	out := map[string]int{}
	for i := range voters {
		if !voters[i].Learner {
			out[voters[i].Datacenter]++
		}
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
