package status

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
)

// statusCache is what one run leaves for the next, so that a run while the
// API server is down still knows the etcd endpoints and where members are.
type statusCache struct {
	Server    string   `json:"server"`
	Label     string   `json:"label"`
	Endpoints []string `json:"endpoints"`
	// Datacenters maps node and member names to datacenters.
	Datacenters map[string]string `json:"datacenters"`
}

func cachePath(dir, server string) string {
	sum := sha256.Sum256([]byte(server))
	return filepath.Join(dir, "kubectl-dc", "status-"+hex.EncodeToString(sum[:8])+".json")
}

func readStatusCache(dir, server string) *statusCache {
	if dir == "" {
		return nil
	}
	data, err := os.ReadFile(cachePath(dir, server))
	if err != nil {
		return nil
	}
	var c statusCache
	if json.Unmarshal(data, &c) != nil || c.Server != server {
		return nil
	}
	return &c
}

// writeStatusCache is best effort: a read-only home must not fail status.
func writeStatusCache(dir string, c *statusCache) {
	if dir == "" {
		return
	}
	p := cachePath(dir, c.Server)
	if os.MkdirAll(filepath.Dir(p), 0o750) != nil {
		return
	}
	data, err := json.Marshal(c)
	if err != nil {
		return
	}
	tmp := p + ".tmp"
	if os.WriteFile(tmp, data, 0o600) == nil {
		_ = os.Rename(tmp, p)
	}
}
