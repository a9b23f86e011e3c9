package cluster_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/jitstream/jitstream/internal/testutil/cluster"
	"github.com/jitstream/jitstream/internal/testutil/fixtures"
)

func TestMain(m *testing.M) { os.Exit(cluster.Main(m)) }

// listAssets returns the ids of user's assets that node lists through the
// API, with token.
func listAssets(t *testing.T, n *cluster.Node, user, token string) []string {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, n.URL()+"/api/v1/users/"+user+"/assets", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("node %d: %v", n.Index, err)
	}
	defer resp.Body.Close()
	var body struct {
		Assets []struct{ ID string } `json:"assets"`
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("node %d: list: %s", n.Index, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("node %d: list: %v", n.Index, err)
	}
	var ids []string
	for _, a := range body.Assets {
		ids = append(ids, a.ID)
	}
	return ids
}

// TestCluster: the nodes share one store and state (what the command line
// stores, every node serves), a node killed stops answering and starts
// again on its address, and the command line reports failures.
func TestCluster(t *testing.T) {
	c := cluster.Start(t, cluster.Options{})
	if len(c.Nodes) != 2 || c.Nodes[0].Addr() == c.Nodes[1].Addr() {
		t.Fatalf("nodes %v, want two on different addresses", c.Addrs())
	}
	c.MustCLI(t, "users", "add", "alice")
	token := strings.TrimSpace(c.MustCLI(t, "tokens", "create", "--user", "alice"))
	id := strings.TrimSpace(c.MustCLI(t, "ingest", "--user", "alice", fixtures.H264AAC(t)))
	for _, n := range c.Nodes {
		if ids := listAssets(t, n, "alice", token); len(ids) != 1 || ids[0] != id {
			t.Errorf("node %d lists %q, want [%s]", n.Index, ids, id)
		}
	}
	if objs := c.Objects(t, "users/alice/assets/"+id+"/"); len(objs) != 3 {
		t.Errorf("objects of the asset %+v, want meta.json, the index and the original", objs)
	}

	n := c.Nodes[0]
	n.Kill()
	if n.Running() {
		t.Error("node runs after Kill")
	}
	if resp, err := http.Get(n.URL() + "/healthz"); err == nil {
		resp.Body.Close()
		t.Error("a killed node answers")
	}
	n.Start(t)
	if ids := listAssets(t, n, "alice", token); len(ids) != 1 {
		t.Errorf("restarted node lists %q", ids)
	}
	n.Restart(t)
	if !n.Running() {
		t.Error("node does not run after Restart")
	}

	_, stderr, err := c.CLI(t.Context(), "rm", "--user", "alice", "NOSUCHASSET")
	var exit *exec.ExitError
	if !errors.As(err, &exit) {
		t.Errorf("rm of a missing asset: err %v, want an exit error", err)
	}
	if !strings.Contains(stderr, "NOSUCHASSET") {
		t.Errorf("rm of a missing asset: stderr %q", stderr)
	}
}
