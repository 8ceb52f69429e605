package cluster

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/remotecommand"

	"github.com/kubectl-dc/kubectl-dc/policy"
)

// kubeadm's certificate paths inside a stacked etcd pod: the health-check
// client certificate may read member lists and status.
const (
	DefaultExecCACert = "/etc/kubernetes/pki/etcd/ca.crt"
	DefaultExecCert   = "/etc/kubernetes/pki/etcd/healthcheck-client.crt"
	DefaultExecKey    = "/etc/kubernetes/pki/etcd/healthcheck-client.key"
)

// EtcdTLSFiles are client TLS files on this machine; all empty means plain
// TLS with system roots for https endpoints, none for http.
type EtcdTLSFiles struct {
	CACert, Cert, Key string
}

func (f EtcdTLSFiles) config() (*tls.Config, error) {
	if f.CACert == "" && f.Cert == "" && f.Key == "" {
		return nil, nil
	}
	if (f.Cert == "") != (f.Key == "") {
		return nil, errors.New("--etcd-cert and --etcd-key must be given together")
	}
	info := transport.TLSInfo{CertFile: f.Cert, KeyFile: f.Key, TrustedCAFile: f.CACert}
	cfg, err := info.ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("loading etcd client TLS files (--etcd-cacert/--etcd-cert/--etcd-key): %w", err)
	}
	return cfg, nil
}

// endpointStatus is what one endpoint said about itself.
type endpointStatus struct {
	Endpoint string
	MemberID uint64
	Leader   uint64
	Learner  bool
	Errors   []string
	Err      error
	// Members is the endpoint's serializable member list; nil if the call
	// failed.
	Members []EtcdMemberInfo
}

// ReadEtcdDirect dials every endpoint in parallel, each call bounded by
// timeout: Status for health, leader and learner, and a serializable
// MemberList, which a member answers from its own state even without
// quorum. Members that no given endpoint reaches are probed by their own
// client URLs in a second round. It fails only when no endpoint answers.
func ReadEtcdDirect(ctx context.Context, endpoints []string, files EtcdTLSFiles, timeout time.Duration) (*EtcdView, error) {
	tlsCfg, err := files.config()
	if err != nil {
		return nil, err
	}
	probe := func(eps []string, list bool) []endpointStatus {
		out := make([]endpointStatus, len(eps))
		var wg sync.WaitGroup
		for i, ep := range eps {
			wg.Add(1)
			go func() {
				defer wg.Done()
				out[i] = probeEndpoint(ctx, ep, tlsCfg, timeout, list)
			}()
		}
		wg.Wait()
		return out
	}
	statuses := probe(endpoints, true)
	var members []EtcdMemberInfo
	for _, s := range statuses {
		members = mergeMembers(members, s.Members)
	}
	probed := map[string]bool{}
	for _, ep := range endpoints {
		probed[strings.TrimRight(ep, "/")] = true
	}
	var more []string
	for _, m := range members {
		reached := false
		for _, s := range statuses {
			if s.Err == nil && s.MemberID == m.ID {
				reached = true
			}
		}
		if reached {
			continue
		}
		for _, u := range m.ClientURLs {
			if !probed[strings.TrimRight(u, "/")] {
				probed[strings.TrimRight(u, "/")] = true
				more = append(more, u)
				break
			}
		}
	}
	if len(more) > 0 {
		statuses = append(statuses, probe(more, false)...)
	}
	return combineStatuses(endpoints, statuses)
}

// combineStatuses merges the answers of endpoints into a view. It fails
// only when no endpoint answered.
func combineStatuses(endpoints []string, statuses []endpointStatus) (*EtcdView, error) {
	var members []EtcdMemberInfo
	// Endpoints that failed for one reason are said once with it.
	var reasons []string
	failed := map[string][]string{}
	answered := false
	for _, s := range statuses {
		members = mergeMembers(members, s.Members)
		if s.Err == nil {
			answered = true
			continue
		}
		why := s.Err.Error()
		if failed[why] == nil {
			reasons = append(reasons, why)
		}
		failed[why] = append(failed[why], s.Endpoint)
	}
	var errs []string
	for _, why := range reasons {
		errs = append(errs, strings.Join(failed[why], ", ")+": "+why)
	}
	if !answered {
		return nil, fmt.Errorf("no etcd endpoint answered (%s)", strings.Join(errs, "; "))
	}
	v := assembleView(members, statuses)
	v.Source, v.Endpoints = EtcdSourceDirect, endpoints
	for _, e := range errs {
		v.Notes = append(v.Notes, "unreachable: "+e)
	}
	return v, nil
}

// assembleView marks members healthy when one of their endpoints answered
// Status without errors, and picks the leader most healthy members name.
func assembleView(members []EtcdMemberInfo, statuses []endpointStatus) *EtcdView {
	votes := map[uint64]int{}
	for _, s := range statuses {
		if s.Err != nil {
			continue
		}
		found := false
		for i := range members {
			if members[i].ID == s.MemberID {
				found = true
				if memberErrors(s.Errors) == 0 {
					members[i].Healthy = true
				}
				members[i].Learner = members[i].Learner || s.Learner
			}
		}
		if !found {
			// An endpoint whose member list failed still counts itself.
			members = append(members, EtcdMemberInfo{ID: s.MemberID, Name: s.Endpoint, ClientURLs: []string{s.Endpoint}, Healthy: memberErrors(s.Errors) == 0, Learner: s.Learner})
		}
		if s.Leader != 0 && memberErrors(s.Errors) == 0 {
			votes[s.Leader]++
		}
	}
	v := &EtcdView{Members: members}
	best := 0
	for id, n := range votes {
		if n > best || (n == best && id < v.LeaderID) {
			v.LeaderID, best = id, n
		}
	}
	sort.Slice(v.Members, func(i, j int) bool { return v.Members[i].Name < v.Members[j].Name })
	return v
}

// memberErrors counts the status errors that make a member unhealthy
// (alarms such as NOSPACE or CORRUPT). "no leader" is not one: a running
// member of a cluster without quorum reports it, and quorum is judged from
// the healthy count.
func memberErrors(errs []string) int {
	n := 0
	for _, e := range errs {
		if !strings.Contains(e, "no leader") {
			n++
		}
	}
	return n
}

// mergeMembers adds the members of b that a does not hold (by ID).
func mergeMembers(a, b []EtcdMemberInfo) []EtcdMemberInfo {
	for _, m := range b {
		dup := false
		for i := range a {
			if a[i].ID == m.ID {
				dup = true
				if a[i].Name == "" {
					a[i].Name = m.Name
				}
				if len(a[i].ClientURLs) == 0 {
					a[i].ClientURLs = m.ClientURLs
				}
			}
		}
		if !dup {
			a = append(a, m)
		}
	}
	return a
}

func probeEndpoint(ctx context.Context, ep string, tlsCfg *tls.Config, timeout time.Duration, list bool) endpointStatus {
	s := endpointStatus{Endpoint: ep}
	if err := tlsProblem(ctx, ep, tlsCfg, timeout); err != nil {
		s.Err = err
		return s
	}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   []string{ep},
		DialTimeout: timeout,
		TLS:         tlsCfg,
		Logger:      zap.NewNop(),
		Context:     ctx,
	})
	if err != nil {
		s.Err = err
		return s
	}
	defer func() { _ = cli.Close() }()
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	st, err := cli.Status(cctx, ep)
	if err != nil {
		s.Err = err
		return s
	}
	if st.Header != nil {
		s.MemberID = st.Header.MemberId
	}
	s.Leader, s.Learner, s.Errors = st.Leader, st.IsLearner, st.Errors
	if !list {
		return s
	}
	lctx, lcancel := context.WithTimeout(ctx, timeout)
	defer lcancel()
	ml, err := cli.MemberList(lctx, clientv3.WithSerializable())
	if err != nil {
		return s
	}
	for _, m := range ml.Members {
		s.Members = append(s.Members, EtcdMemberInfo{ID: m.ID, Name: m.Name, PeerURLs: m.PeerURLs, ClientURLs: m.ClientURLs, Learner: m.IsLearner})
	}
	return s
}

// EtcdExecTLS are certificate paths inside the etcd pod.
type EtcdExecTLS struct {
	CACert, Cert, Key string
}

// EtcdctlArgs builds an etcdctl command line against endpoints (the pod's
// own advertised URL when empty: 127.0.0.1:2379 for kubeadm).
func EtcdctlArgs(files EtcdExecTLS, endpoints []string, timeout time.Duration, args ...string) []string {
	if len(endpoints) == 0 {
		endpoints = []string{"https://127.0.0.1:2379"}
	}
	cmd := []string{"etcdctl",
		"--endpoints=" + strings.Join(endpoints, ","),
		"--dial-timeout=" + timeout.String(),
		"--command-timeout=" + timeout.String(),
	}
	if files.CACert != "" {
		cmd = append(cmd, "--cacert="+files.CACert)
	}
	if files.Cert != "" {
		cmd = append(cmd, "--cert="+files.Cert)
	}
	if files.Key != "" {
		cmd = append(cmd, "--key="+files.Key)
	}
	cmd = append(cmd, args...)
	return append(cmd, "-w", "json")
}

// etcdctlMemberList is `etcdctl member list -w json`.
type etcdctlMemberList struct {
	Members []struct {
		ID         uint64   `json:"ID"`
		Name       string   `json:"name"`
		PeerURLs   []string `json:"peerURLs"`
		ClientURLs []string `json:"clientURLs"`
		IsLearner  bool     `json:"isLearner"`
	} `json:"members"`
}

// etcdctlEndpointStatus is one entry of `etcdctl endpoint status -w json`.
type etcdctlEndpointStatus struct {
	Endpoint string `json:"Endpoint"`
	Status   struct {
		Header struct {
			MemberID uint64 `json:"member_id"`
		} `json:"header"`
		Leader    uint64   `json:"leader"`
		IsLearner bool     `json:"isLearner"`
		Errors    []string `json:"errors"`
	} `json:"Status"`
}

// ParseEtcdctl turns the JSON of `member list` and `endpoint status` into a
// view. Members missing from the status output are unhealthy.
func ParseEtcdctl(memberList, endpointStatusOut []byte) (*EtcdView, error) {
	var ml etcdctlMemberList
	if err := json.Unmarshal(memberList, &ml); err != nil {
		return nil, fmt.Errorf("parsing etcdctl member list output: %w", err)
	}
	if len(ml.Members) == 0 {
		return nil, errors.New("etcdctl member list returned no members")
	}
	var members []EtcdMemberInfo
	for _, m := range ml.Members {
		members = append(members, EtcdMemberInfo{ID: m.ID, Name: m.Name, PeerURLs: m.PeerURLs, ClientURLs: m.ClientURLs, Learner: m.IsLearner})
	}
	var eps []etcdctlEndpointStatus
	if len(bytes.TrimSpace(endpointStatusOut)) > 0 {
		if err := json.Unmarshal(endpointStatusOut, &eps); err != nil {
			return nil, fmt.Errorf("parsing etcdctl endpoint status output: %w", err)
		}
	}
	var statuses []endpointStatus
	for _, e := range eps {
		statuses = append(statuses, endpointStatus{Endpoint: e.Endpoint, MemberID: e.Status.Header.MemberID, Leader: e.Status.Leader, Learner: e.Status.IsLearner, Errors: e.Status.Errors})
	}
	v := assembleView(members, statuses)
	v.Source = EtcdSourceExec
	return v, nil
}

// PodExecFunc runs cmd in a container and returns its stdout and stderr.
type PodExecFunc func(ctx context.Context, namespace, pod, container string, cmd []string) (stdout, stderr []byte, err error)

// NewPodExec returns a PodExecFunc that execs through the API server.
func NewPodExec(cfg *rest.Config, client kubernetes.Interface) PodExecFunc {
	return func(ctx context.Context, namespace, pod, container string, cmd []string) ([]byte, []byte, error) {
		req := client.CoreV1().RESTClient().Post().Resource("pods").Namespace(namespace).Name(pod).SubResource("exec").
			VersionedParams(&corev1.PodExecOptions{Container: container, Command: cmd, Stdout: true, Stderr: true}, scheme.ParameterCodec)
		exec, err := remotecommand.NewSPDYExecutor(cfg, "POST", req.URL())
		if err != nil {
			return nil, nil, err
		}
		var out, errOut bytes.Buffer
		err = exec.StreamWithContext(ctx, remotecommand.StreamOptions{Stdout: &out, Stderr: &errOut})
		return out.Bytes(), errOut.Bytes(), err
	}
}

// ReadEtcdExec runs etcdctl in the first etcd pod that answers: the member
// list, then the status of every member's client URLs.
func ReadEtcdExec(ctx context.Context, run PodExecFunc, pods []*corev1.Pod, files EtcdExecTLS, timeout time.Duration) (*EtcdView, error) {
	var errs []string
	for _, p := range pods {
		container := ""
		if len(p.Spec.Containers) > 0 {
			container = p.Spec.Containers[0].Name
		}
		local := SplitURLList(p.Annotations[policy.AnnotationEtcdClientURLs])
		cctx, cancel := context.WithTimeout(ctx, 2*timeout)
		ml, stderr, err := run(cctx, p.Namespace, p.Name, container, EtcdctlArgs(files, local, timeout, "member", "list"))
		cancel()
		if err != nil {
			errs = append(errs, fmt.Sprintf("%s/%s: %v %s", p.Namespace, p.Name, err, strings.TrimSpace(string(stderr))))
			continue
		}
		var parsed etcdctlMemberList
		_ = json.Unmarshal(ml, &parsed)
		var urls []string
		for _, m := range parsed.Members {
			urls = append(urls, m.ClientURLs...)
		}
		cctx, cancel = context.WithTimeout(ctx, 2*timeout)
		// etcdctl exits non-zero when some endpoint fails but still prints
		// the others: parse what it printed.
		st, _, _ := run(cctx, p.Namespace, p.Name, container, EtcdctlArgs(files, urls, timeout, "endpoint", "status"))
		cancel()
		v, err := ParseEtcdctl(ml, st)
		if err != nil {
			errs = append(errs, fmt.Sprintf("%s/%s: %v", p.Namespace, p.Name, err))
			continue
		}
		return v, nil
	}
	if len(errs) == 0 {
		return nil, errors.New("no etcd pod to exec into")
	}
	return nil, fmt.Errorf("etcdctl by exec failed: %s", strings.Join(errs, "; "))
}
