package playlist

import (
	"os"
	"testing"

	"github.com/jitstream/jitstream/internal/testutil/minio"
	"github.com/jitstream/jitstream/internal/testutil/redis"
)

// TestMain stops, once the tests are done, the servers they share: the
// redis-server of the Redis state tests (internal/testutil/redis, Shared)
// and the MinIO server of the store tests when they run on the S3 store
// (JITSTREAM_TEST_STORE=s3, see internal/testutil/teststore). Each is
// started by its first use only.
func TestMain(m *testing.M) {
	os.Exit(redis.Run(func() int { return minio.Main(m) }))
}
