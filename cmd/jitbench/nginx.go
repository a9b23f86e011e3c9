package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
)

// nginx serves root as static files, the way a plain file server would:
// sendfile on, one worker per core, no access log.
type nginx struct {
	bin  string
	dir  string // config, pid, temp paths, logs
	root string
	n    int
}

func findNginx() (string, error) {
	if p, err := exec.LookPath("nginx"); err == nil {
		return p, nil
	}
	const deb = "/usr/sbin/nginx"
	if _, err := os.Stat(deb); err == nil {
		return deb, nil
	}
	return "", fmt.Errorf("nginx not found (apt-get install nginx-light)")
}

const nginxConf = `%s
worker_processes auto;
daemon off;
master_process on;
pid %[2]s/nginx.pid;
error_log %[2]s/error.log warn;
events {
	worker_connections 4096;
}
http {
	access_log off;
	sendfile on;
	tcp_nopush on;
	keepalive_requests 1000000;
	client_body_temp_path %[2]s/tmp/body;
	proxy_temp_path %[2]s/tmp/proxy;
	fastcgi_temp_path %[2]s/tmp/fastcgi;
	uwsgi_temp_path %[2]s/tmp/uwsgi;
	scgi_temp_path %[2]s/tmp/scgi;
	types {
		video/mp4 mp4;
	}
	default_type application/octet-stream;
	server {
		listen 127.0.0.1:%[3]d;
		root %[4]s;
		location / {
		}
	}
}
`

func (n *nginx) start(ctx context.Context, c *http.Client, probe string) (*server, error) {
	if err := os.MkdirAll(filepath.Join(n.dir, "tmp"), 0o755); err != nil {
		return nil, err
	}
	// Workers drop to "nobody" when the master runs as root; keep our own
	// user so that they can read the (mode 0700) temp dirs.
	userLine := ""
	if os.Geteuid() == 0 {
		userLine = "user root;"
		if u, err := user.Current(); err == nil {
			userLine = "user " + u.Username + ";"
		}
	}
	return startServer(ctx, c, "nginx", probe, func(port int) (*proc, error) {
		n.n++
		conf := filepath.Join(n.dir, fmt.Sprintf("nginx-%d.conf", n.n))
		body := fmt.Sprintf(nginxConf, userLine, n.dir, port, n.root)
		if err := os.WriteFile(conf, []byte(body), 0o644); err != nil {
			return nil, err
		}
		return startProc("nginx", filepath.Join(n.dir, "nginx.log"), n.bin,
			"-p", n.dir, "-c", conf, "-e", filepath.Join(n.dir, "error.log"))
	})
}
