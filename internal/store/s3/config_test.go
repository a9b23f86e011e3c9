package s3

import (
	"fmt"
	"strings"
	"testing"
)

func TestParseURL(t *testing.T) {
	awsEnv := map[string]string{"AWS_ACCESS_KEY_ID": "AKID", "AWS_SECRET_ACCESS_KEY": "aws-secret", "MINIO_ROOT_USER": "root", "MINIO_ROOT_PASSWORD": "minio-secret"}
	minioEnv := map[string]string{"MINIO_ROOT_USER": "root", "MINIO_ROOT_PASSWORD": "minio-secret"}
	for _, tc := range []struct {
		url     string
		env     map[string]string
		want    Config
		wantErr string // a part of the error; "" for no error
	}{
		{
			url:  "s3://bucket/optional/prefix?endpoint=http://127.0.0.1:9000&region=us-east-1&create=1",
			env:  minioEnv,
			want: Config{Endpoint: "http://127.0.0.1:9000", Bucket: "bucket", Prefix: "optional/prefix", Region: "us-east-1", AccessKey: "root", SecretKey: "minio-secret", Create: true, MaxRetries: DefaultURLRetries},
		},
		{
			url:  "s3://bucket",
			env:  awsEnv,
			want: Config{Endpoint: DefaultEndpoint, Bucket: "bucket", AccessKey: "AKID", SecretKey: "aws-secret", MaxRetries: DefaultURLRetries},
		},
		{
			url:  "s3://bucket/",
			want: Config{Endpoint: DefaultEndpoint, Bucket: "bucket", MaxRetries: DefaultURLRetries},
		},
		{
			url:  "s3://my-bucket/p/?create=false&part_size=33554432&max_retries=2&endpoint=https://minio.example:9443",
			want: Config{Endpoint: "https://minio.example:9443", Bucket: "my-bucket", Prefix: "p", PartSize: 32 << 20, MaxRetries: 2},
		},
		{
			url:  "s3://bucket?endpoint=" + "http%3A%2F%2Flocalhost%3A9000",
			want: Config{Endpoint: "http://localhost:9000", Bucket: "bucket", MaxRetries: DefaultURLRetries},
		},
		{url: "", wantErr: "scheme"},
		{url: "bucket/prefix", wantErr: "scheme"},
		{url: "http://bucket/prefix", wantErr: "scheme"},
		{url: "s3:bucket", wantErr: "no bucket"},
		{url: "s3:///prefix", wantErr: "no bucket"},
		{url: "s3://Bad_Bucket", wantErr: "bucket"},
		{url: "s3://ab", wantErr: "bucket"},
		{url: "s3://user:hunter2@bucket/prefix", wantErr: "credentials"},
		{url: "s3://bucket?endpoint=http://user:hunter2@host:9000", wantErr: "credentials"},
		{url: "s3://bucket#frag", wantErr: "fragment"},
		{url: "s3://bucket?region=a&region=b", wantErr: "region given 2 times"},
		{url: "s3://bucket?create=maybe", wantErr: "create"},
		{url: "s3://bucket?part_size=16MiB", wantErr: "part_size"},
		{url: "s3://bucket?part_size=1000", wantErr: "below the S3 minimum"},
		{url: "s3://bucket?max_retries=-1", wantErr: "max_retries"},
		{url: "s3://bucket?secret=x", wantErr: "unknown parameter"},
		{url: "s3://bucket?endpoint=ftp://host", wantErr: "endpoint"},
		{url: "s3://bucket?endpoint=http://host/path", wantErr: "endpoint"},
		{url: "s3://bucket?endpoint=host:9000", wantErr: "endpoint"},
		{url: "s3://bucket/a/../b", wantErr: "prefix"},
		{url: "s3://bucket/sp%20ace", wantErr: "prefix"},
		{url: "s3://bucket?%zz", wantErr: "query"},
	} {
		t.Run(tc.url, func(t *testing.T) {
			got, err := parseURL(tc.url, func(k string) string { return tc.env[k] })
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("ParseURL = %v, %v; want an error saying %q", got, err, tc.wantErr)
				}
				if strings.Contains(err.Error(), "hunter2") {
					t.Errorf("the error shows the password: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("ParseURL = %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestParseURLEnvironment(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "")
	t.Setenv("MINIO_ROOT_USER", "env-user")
	t.Setenv("MINIO_ROOT_PASSWORD", "env-secret")
	c, err := ParseURL("s3://bucket")
	if err != nil || c.AccessKey != "env-user" || c.SecretKey != "env-secret" {
		t.Errorf("ParseURL = %v, %v; want the credentials of the environment", c, err)
	}
}

func TestNormalize(t *testing.T) {
	ok := Config{Endpoint: "http://127.0.0.1:9000", Bucket: "bucket"}
	for _, tc := range []struct {
		name    string
		change  func(*Config)
		want    func(Config) bool
		wantErr string
	}{
		{"defaults", func(*Config) {}, func(c Config) bool { return c.PartSize == DefaultPartSize && c.Prefix == "" }, ""},
		{"prefix slashes", func(c *Config) { c.Prefix = "/a/b/" }, func(c Config) bool { return c.Prefix == "a/b" }, ""},
		{"part size kept", func(c *Config) { c.PartSize = 64 << 20 }, func(c Config) bool { return c.PartSize == 64<<20 }, ""},
		{"no bucket", func(c *Config) { c.Bucket = "" }, nil, "no bucket"},
		{"no endpoint", func(c *Config) { c.Endpoint = "" }, nil, "endpoint"},
		{"part size too small", func(c *Config) { c.PartSize = MinPartSize - 1 }, nil, "minimum"},
		{"part size too large", func(c *Config) { c.PartSize = 6 << 30 }, nil, "maximum"},
		{"negative retries", func(c *Config) { c.MaxRetries = -1 }, nil, "retries"},
		{"bad prefix", func(c *Config) { c.Prefix = "a//b" }, nil, "prefix"},
		{"endpoint with credentials", func(c *Config) { c.Endpoint = "http://u:hunter2@h" }, nil, "credentials"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := ok
			tc.change(&c)
			got, err := c.normalize()
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || strings.Contains(err.Error(), "hunter2") {
					t.Errorf("normalize = %v; want an error saying %q (without the password)", err, tc.wantErr)
				}
				return
			}
			if err != nil || !tc.want(got) {
				t.Errorf("normalize = %v, %v", got, err)
			}
		})
	}
}

func TestConfigStringHidesSecret(t *testing.T) {
	c := Config{Endpoint: "http://h", Bucket: "b", AccessKey: "AKID", SecretKey: "hunter2"}
	for _, s := range []string{c.String(), fmt.Sprintf("%v", c), fmt.Sprintf("%+v", c), fmt.Sprint(&c)} {
		if strings.Contains(s, "hunter2") || !strings.Contains(s, "AKID") {
			t.Errorf("%s: want the access key and not the secret", s)
		}
	}
}
