package playback_test

import (
	"testing"

	"github.com/jitstream/jitstream/internal/testutil/minio"
)

// The tests' stores may be S3 (JITSTREAM_TEST_STORE=s3), on the shared MinIO.
func TestMain(m *testing.M) { minio.Main(m) }
