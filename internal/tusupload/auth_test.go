package tusupload_test

import (
	"net/http"
	"path/filepath"
	"testing"

	"github.com/jitstream/jitstream/internal/outputs"
	"github.com/jitstream/jitstream/internal/server"
	"github.com/jitstream/jitstream/internal/testutil/fixtures"
	"github.com/jitstream/jitstream/internal/testutil/jitserver"
	"github.com/jitstream/jitstream/internal/tusupload"
)

// TestUploadWithToken: on a server with access control, the official
// client uploads with the user's token in an Authorization header (every
// request, the CORS-free OPTIONS aside), and the upload becomes an asset;
// its result is the user's only.
func TestUploadWithToken(t *testing.T) {
	e := jitserver.New(t, jitserver.WithAuth())
	svc, err := tusupload.New(outputs.New(e.Library, 0), tusupload.Options{Dir: tusupload.DefaultDir(e.Dir)})
	if err != nil {
		t.Fatal(err)
	}
	base := e.Serve(t, server.Options{Auth: e.Auth, Uploads: svc})
	r := upload(t, clientConfig{Endpoint: base + "/api/v1/users/" + jitserver.User + "/uploads/", File: fixtures.H264AAC(t),
		ChunkSize: 64 << 10, Metadata: map[string]string{"filename": "GX010042.MP4"},
		URLStorage: filepath.Join(t.TempDir(), "urls.json"), Headers: map[string]string{"Authorization": "Bearer " + e.Token}})
	ok, _ := r.last("success")
	if ok.Headers[tusupload.HeaderIngestStatus] != "200" || ok.Headers[tusupload.HeaderAsset] != "GX010042" {
		t.Fatalf("final PATCH headers %v, want ingest status 200 and asset GX010042", ok.Headers)
	}
	if resp, _ := do(t, http.MethodGet, ok.URL+"/result", nil, "Authorization", "Bearer "+e.Token); resp.StatusCode != http.StatusOK {
		t.Errorf("result with the token: %d", resp.StatusCode)
	}
	if resp, _ := do(t, http.MethodGet, ok.URL+"/result", nil); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("result without a token: %d", resp.StatusCode)
	}
	e.AddUser(t, "bob")
	if resp, _ := do(t, http.MethodHead, ok.URL, nil, "Authorization", "Bearer "+e.CreateToken(t, "bob", 0)); resp.StatusCode != http.StatusNotFound {
		t.Errorf("HEAD of alice's upload with bob's token: %d", resp.StatusCode)
	}
	// Discovery needs no token and tells nothing of users.
	resp, _ := do(t, http.MethodOptions, base+"/api/v1/users/nobody/uploads/", nil)
	if resp.StatusCode/100 != 2 || resp.Header.Get("Tus-Version") == "" {
		t.Errorf("OPTIONS of an unknown user's uploads: %d %v", resp.StatusCode, resp.Header)
	}
}
