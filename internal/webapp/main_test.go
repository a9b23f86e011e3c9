package webapp_test

import (
	"testing"

	"github.com/jitstream/jitstream/internal/testutil/minio"
)

// TestMain stops the MinIO server that the tests share when they run on
// the S3 store (JITSTREAM_TEST_STORE=s3, see internal/testutil/teststore);
// with the local store none is started.
func TestMain(m *testing.M) { minio.Main(m) }
