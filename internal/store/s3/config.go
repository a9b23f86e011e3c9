package s3

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"

	"github.com/jitstream/jitstream/internal/store"
	"github.com/minio/minio-go/v7/pkg/s3utils"
)

// DefaultEndpoint is the endpoint of a Config parsed from a URL without an
// endpoint parameter: Amazon S3.
const DefaultEndpoint = "https://s3.amazonaws.com"

// DefaultURLRetries is the MaxRetries of a Config parsed from a URL without
// max_retries: a server answering viewers fails within about a second when
// the store is down (503 with Retry-After: the client comes back), rather
// than after the client library's default of ten attempts (seconds).
const DefaultURLRetries = 3

// DefaultPartSize is the multipart part size of a Config with PartSize 0.
const DefaultPartSize = 16 << 20

// MinPartSize is the smallest part size S3 accepts for every part but the
// last one of a multipart upload.
const MinPartSize = 5 << 20

// maxParts is the largest number of parts of a multipart upload.
const maxParts = 10000

// maxPartSize is the largest part S3 accepts.
const maxPartSize = 5 << 30

// Config says where a Store keeps its objects and how it reaches them.
type Config struct {
	// Endpoint is the URL of the S3 service, http:// or https://, without a
	// path, like "http://127.0.0.1:9000" or "https://s3.amazonaws.com".
	Endpoint string
	// Bucket is the bucket holding the objects.
	Bucket string
	// Prefix is prepended (with a slash) to every key inside the bucket, so
	// that several stores can share one bucket. It may be empty.
	Prefix string
	// Region is the bucket's region. Empty lets the client find it out
	// (one extra request per bucket).
	Region string
	// AccessKey and SecretKey are the credentials; both empty means
	// anonymous requests.
	AccessKey, SecretKey string
	// PartSize is the size of the parts of multipart uploads (default
	// DefaultPartSize, at least MinPartSize). A Put buffers one part in
	// memory, so it bounds a Put's memory use; objects up to one part are
	// stored with a single request.
	PartSize int64
	// Create creates the bucket in New when it is missing.
	Create bool
	// MaxRetries is the number of attempts of each request, the first
	// included, for errors that may go away (network errors, 5xx). 0 means
	// the client's default (10, with exponential backoff capped at 1s, so a
	// request to a store that is down fails after some seconds); 1 means no
	// retry.
	MaxRetries int
}

// String describes the configuration without the secret key, so that a
// Config can be logged.
func (c Config) String() string {
	secret := ""
	if c.SecretKey != "" {
		secret = "REDACTED"
	}
	return fmt.Sprintf("{Endpoint:%s Bucket:%s Prefix:%s Region:%s AccessKey:%s SecretKey:%s PartSize:%d Create:%t MaxRetries:%d}",
		c.Endpoint, c.Bucket, c.Prefix, c.Region, c.AccessKey, secret, c.PartSize, c.Create, c.MaxRetries)
}

// ParseURL parses store settings like
//
//	s3://bucket/optional/prefix?endpoint=http://127.0.0.1:9000&region=us-east-1&create=1
//
// The query parameters are all optional:
//
//   - endpoint: the service URL (default DefaultEndpoint)
//   - region: the bucket's region
//   - create: a boolean (1, true, 0, false); create the bucket if missing
//   - part_size: the multipart part size in bytes
//   - max_retries: attempts per request (see Config.MaxRetries); default
//     DefaultURLRetries
//
// Unknown parameters are an error. Credentials never come from the URL (so
// that they never end up in logs), but from the environment:
// AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, else MINIO_ROOT_USER and
// MINIO_ROOT_PASSWORD. A URL with a user or password is rejected.
func ParseURL(s string) (Config, error) {
	return parseURL(s, os.Getenv)
}

// parseURL is ParseURL reading the environment through getenv.
func parseURL(s string, getenv func(string) string) (Config, error) {
	u, err := url.Parse(s)
	if err != nil {
		// url.Error repeats the whole URL, which may hold a secret: keep
		// only the reason.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return Config{}, fmt.Errorf("s3: parse store URL: %w", err)
	}
	if u.User != nil {
		return Config{}, errors.New("s3: store URL must not hold credentials; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
	}
	if u.Scheme != "s3" {
		return Config{}, fmt.Errorf("s3: store URL: scheme %q, want s3://bucket/prefix", u.Scheme)
	}
	if u.Opaque != "" || u.Host == "" {
		return Config{}, errors.New("s3: store URL: no bucket, want s3://bucket/prefix")
	}
	if strings.Contains(s, "#") {
		return Config{}, errors.New("s3: store URL: unexpected fragment (#)")
	}
	c := Config{
		Endpoint:   DefaultEndpoint,
		Bucket:     u.Host,
		Prefix:     strings.Trim(u.Path, "/"),
		MaxRetries: DefaultURLRetries,
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return Config{}, fmt.Errorf("s3: store URL: query: %w", err)
	}
	for name, vals := range q {
		if len(vals) != 1 {
			return Config{}, fmt.Errorf("s3: store URL: parameter %s given %d times", name, len(vals))
		}
		v := vals[0]
		switch name {
		case "endpoint":
			c.Endpoint = v
		case "region":
			c.Region = v
		case "create":
			b, err := strconv.ParseBool(v)
			if err != nil {
				return Config{}, fmt.Errorf("s3: store URL: create=%q: want 1, true, 0 or false", v)
			}
			c.Create = b
		case "part_size":
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n <= 0 {
				return Config{}, fmt.Errorf("s3: store URL: part_size=%q: want a positive number of bytes", v)
			}
			c.PartSize = n
		case "max_retries":
			n, err := strconv.Atoi(v)
			if err != nil || n <= 0 {
				return Config{}, fmt.Errorf("s3: store URL: max_retries=%q: want a positive number", v)
			}
			c.MaxRetries = n
		default:
			return Config{}, fmt.Errorf("s3: store URL: unknown parameter %q", name)
		}
	}
	if c.AccessKey = getenv("AWS_ACCESS_KEY_ID"); c.AccessKey != "" {
		c.SecretKey = getenv("AWS_SECRET_ACCESS_KEY")
	} else {
		c.AccessKey, c.SecretKey = getenv("MINIO_ROOT_USER"), getenv("MINIO_ROOT_PASSWORD")
	}
	if _, err := c.normalize(); err != nil {
		return Config{}, err
	}
	return c, nil
}

// normalize validates the configuration and returns it with defaults filled
// in and the prefix without leading or trailing slashes. Its errors never
// show the secret key.
func (c Config) normalize() (Config, error) {
	if c.Bucket == "" {
		return Config{}, errors.New("s3: no bucket")
	}
	if err := s3utils.CheckValidBucketNameStrict(c.Bucket); err != nil {
		return Config{}, fmt.Errorf("s3: bucket %q: %w", c.Bucket, err)
	}
	c.Prefix = strings.Trim(c.Prefix, "/")
	if c.Prefix != "" {
		if err := store.CheckKey(c.Prefix); err != nil {
			return Config{}, fmt.Errorf("s3: prefix: %w", err)
		}
	}
	u, err := url.Parse(c.Endpoint)
	if err != nil {
		// url.Error repeats the URL, which may hold a secret.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return Config{}, fmt.Errorf("s3: endpoint: %w", err)
	}
	if u.User != nil {
		return Config{}, errors.New("s3: endpoint must not hold credentials")
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return Config{}, fmt.Errorf("s3: endpoint %q: want http://host[:port] or https://host[:port]", c.Endpoint)
	}
	if c.PartSize == 0 {
		c.PartSize = DefaultPartSize
	}
	if c.PartSize < MinPartSize {
		return Config{}, fmt.Errorf("s3: part size %d is below the S3 minimum of %d bytes", c.PartSize, MinPartSize)
	}
	if c.PartSize > maxPartSize {
		return Config{}, fmt.Errorf("s3: part size %d is above the S3 maximum of %d bytes", c.PartSize, maxPartSize)
	}
	if c.MaxRetries < 0 {
		return Config{}, fmt.Errorf("s3: negative max retries %d", c.MaxRetries)
	}
	return c, nil
}
