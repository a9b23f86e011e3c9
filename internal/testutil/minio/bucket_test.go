package minio

import "testing"

func TestBucketName(t *testing.T) {
	for _, tc := range []struct {
		test string
		n    int64
		want string
	}{
		{"TestX", 1, "t1-testx"},
		{"TestConformance/Get_Ranges/off_==_size", 12, "t12-testconformance-get-ranges-off-size"},
		{"Test/", 3, "t3-test"},
		{"Test" + string(make([]byte, 100)), 4, "t4-test"},
		{"TestAVeryLongNameThatGoesOnAndOnBeyondTheSixtyThreeCharactersOfABucket", 5, "t5-testaverylongnamethatgoesonandonbeyondthesixtythreecharacter"},
		{"TestAVeryLongNameThatGoesOnAndOnBeyondTheSixtyThreeCharacters-OfABucket", 5, "t5-testaverylongnamethatgoesonandonbeyondthesixtythreecharacter"},
		{"TestAVeryLongNameThatGoesOnAndOnBeyondTheSixtyThreeCharacte/rsOfABucket", 5, "t5-testaverylongnamethatgoesonandonbeyondthesixtythreecharacte"},
	} {
		if got := bucketName(tc.test, tc.n); got != tc.want {
			t.Errorf("bucketName(%q, %d) = %q, want %q", tc.test, tc.n, got, tc.want)
		}
	}
}
