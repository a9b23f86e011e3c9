package minio

// StartProcess starts a MinIO server in dir (its data, home and log), for
// programs that are not tests (cmd/jitbench); stop stops it (dir is left
// to the caller).
func StartProcess(dir string) (s *Server, stop func(), err error) {
	s, err = start(dir)
	if err != nil {
		return nil, nil, err
	}
	return s, s.stop, nil
}
