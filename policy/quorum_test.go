package policy_test

import (
	"reflect"
	"testing"

	"github.com/kubectl-dc/kubectl-dc/policy"
)

func TestQuorumArithmetic(t *testing.T) {
	for _, tc := range []struct{ n, quorum, tolerance, perDC int }{
		{-1, 0, 0, 0}, {0, 0, 0, 0}, {1, 1, 0, 0}, {2, 2, 0, 0}, {3, 2, 1, 1},
		{4, 3, 1, 1}, {5, 3, 2, 2}, {6, 4, 2, 2}, {7, 4, 3, 3},
	} {
		if got := policy.Quorum(tc.n); got != tc.quorum {
			t.Errorf("Quorum(%d) = %d, want %d", tc.n, got, tc.quorum)
		}
		if got := policy.FaultTolerance(tc.n); got != tc.tolerance {
			t.Errorf("FaultTolerance(%d) = %d, want %d", tc.n, got, tc.tolerance)
		}
		if got := policy.MaxPerDatacenter(tc.n); got != tc.perDC {
			t.Errorf("MaxPerDatacenter(%d) = %d, want %d", tc.n, got, tc.perDC)
		}
	}
}

func voters(spec ...string) []policy.Voter {
	// spec entries are "<dc>" (healthy voter), "<dc>!" (unhealthy voter) or
	// "<dc>~" (healthy learner).
	var out []policy.Voter
	for i, s := range spec {
		v := policy.Voter{Name: "m" + string(rune('a'+i)), Healthy: true}
		switch last(s) {
		case '!':
			v.Healthy, s = false, s[:len(s)-1]
		case '~':
			v.Learner, s = true, s[:len(s)-1]
		}
		v.Datacenter = s
		out = append(out, v)
	}
	return out
}

func TestSurvivesLoss(t *testing.T) {
	for _, tc := range []struct {
		name   string
		voters []policy.Voter
		lost   []string
		want   bool
	}{
		{"no voters", nil, nil, false},
		{"3 over 3, nothing lost", voters("a", "b", "c"), nil, true},
		{"3 over 3, lose a", voters("a", "b", "c"), []string{"a"}, true},
		{"3 over 3, lose a and b", voters("a", "b", "c"), []string{"a", "b"}, false},
		{"3 over 2, lose the pair", voters("a", "a", "b"), []string{"a"}, false},
		{"3 over 2, lose the single", voters("a", "a", "b"), []string{"b"}, true},
		{"4 over 2, lose either", voters("a", "a", "b", "b"), []string{"a"}, false},
		{"5 over 2, lose the 2", voters("a", "a", "a", "b", "b"), []string{"b"}, true},
		{"5 over 2, lose the 3", voters("a", "a", "a", "b", "b"), []string{"a"}, false},
		{"unhealthy voter outside the lost DC", voters("a", "b!", "c"), []string{"a"}, false},
		{"learners do not count in n", voters("a", "b", "c", "c~", "c~"), []string{"a"}, true},
		{"learners do not make a quorum", voters("a", "a", "b", "b~", "b~"), []string{"a"}, false},
		{"only learners", voters("a~"), nil, false},
		{"unknown datacenter is never lost", voters("", "a", "b"), []string{""}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := policy.SurvivesLoss(tc.voters, tc.lost...); got != tc.want {
				t.Errorf("SurvivesLoss(%v, %v) = %v, want %v", tc.voters, tc.lost, got, tc.want)
			}
		})
	}
}

func TestLossVerdicts(t *testing.T) {
	got := policy.LossVerdicts(voters("pod-1", "pod-1", "pod-2", "pod-3~"), []string{"pod-1", "pod-2", "pod-3", "pod-4"})
	want := map[string]bool{"pod-1": false, "pod-2": true, "pod-3": true, "pod-4": true}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("LossVerdicts = %v, want %v", got, want)
	}
	// A voter's datacenter missing from the list is judged too.
	got = policy.LossVerdicts(voters("a", "b", "c"), nil)
	if want := map[string]bool{"a": true, "b": true, "c": true}; !reflect.DeepEqual(got, want) {
		t.Errorf("LossVerdicts(nil list) = %v, want %v", got, want)
	}
}

func TestVotersPerDatacenter(t *testing.T) {
	got := policy.VotersPerDatacenter(voters("a", "a", "b!", "c~"))
	if want := map[string]int{"a": 2, "b": 1}; !reflect.DeepEqual(got, want) {
		t.Errorf("VotersPerDatacenter = %v, want %v", got, want)
	}
	if n := policy.VotingMembers(voters("a", "b~")); n != 1 {
		t.Errorf("VotingMembers = %d, want 1", n)
	}
}

func last(s string) byte {
	if s == "" {
		return 0
	}
	return s[len(s)-1]
}

func TestSurvivesLossKnown(t *testing.T) {
	for _, tc := range []struct {
		name           string
		voters         []policy.Voter
		lost           []string
		survives, know bool
	}{
		{"all placed", voters("a", "b", "c"), []string{"a"}, true, true},
		{"one unknown: depends on where it is", voters("a", "b", ""), []string{"a"}, true, false},
		{"one unknown of five: survives wherever it is", voters("a", "a", "b", "c", ""), []string{"b"}, true, true},
		{"one unknown: lost wherever it is", voters("a", "a", ""), []string{"a"}, false, true},
		{"unknown learner does not matter", voters("a", "b", "c", "~"), []string{"a"}, true, true},
		{"unknown and down", voters("a", "b", "!"), []string{"a"}, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			survives, known := policy.SurvivesLossKnown(tc.voters, tc.lost...)
			if survives != tc.survives || known != tc.know {
				t.Errorf("SurvivesLossKnown(%v) = %v, known %v; want %v, known %v", tc.lost, survives, known, tc.survives, tc.know)
			}
		})
	}
	if got := policy.UnknownVoters(voters("a", "", "~", "b")); !reflect.DeepEqual(got, []string{"mb"}) {
		t.Errorf("UnknownVoters = %v, want [mb]", got)
	}
}
