package policy

import (
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/kubectl-dc/kubectl-dc/policy/api/v1alpha1"
)

// Message returns the human message of the result: what is wrong and how to
// fix it. The field is in r.Error.Field.
func (r Result) Message() string {
	if r.Error == nil {
		return ""
	}
	return r.Error.Detail
}

// Field returns the field path of the result, "" when there is none.
func (r Result) Field() string {
	if r.Error == nil {
		return ""
	}
	return r.Error.Field
}

// HasDeny reports whether any result rejects the request.
func (rs Results) HasDeny() bool {
	for i := range rs {
		if rs[i].Action == v1alpha1.ActionDeny {
			return true
		}
	}
	return false
}

// Denied returns the Deny results as field errors whose detail starts with
// the rule name, ready for apierrors.NewInvalid.
func (rs Results) Denied() field.ErrorList {
	var out field.ErrorList
	for i := range rs {
		if rs[i].Action != v1alpha1.ActionDeny || rs[i].Error == nil {
			continue
		}
		e := *rs[i].Error
		e.Detail = rs[i].Rule + ": " + e.Detail
		out = append(out, &e)
	}
	return out
}

// Warnings returns the Warn results, one line each:
// "<rule>: <field>: <message>".
func (rs Results) Warnings() []string {
	var out []string
	for i := range rs {
		if rs[i].Action != v1alpha1.ActionWarn {
			continue
		}
		out = append(out, rs[i].Rule+": "+rs[i].Field()+": "+rs[i].Message())
	}
	return out
}

// Filter returns the results with the given action.
func (rs Results) Filter(a v1alpha1.Action) Results {
	var out Results
	for i := range rs {
		if rs[i].Action == a {
			out = append(out, rs[i])
		}
	}
	return out
}

func (rs Results) sort() {
	if len(rs) < 2 {
		return
	}
	sort.SliceStable(rs, func(i, j int) bool {
		a, b := &rs[i], &rs[j]
		if c := strings.Compare(a.Field(), b.Field()); c != 0 {
			return c < 0
		}
		if c := strings.Compare(a.Rule, b.Rule); c != 0 {
			return c < 0
		}
		return a.Message() < b.Message()
	})
}
