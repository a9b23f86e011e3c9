import socket, time, sys
port=int(sys.argv[1]); path=sys.argv[2]; rcv=int(sys.argv[3])
socks=[]
t0=time.time()
for i in range(200):
    s=socket.create_connection(("127.0.0.1",port))
    if rcv: s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcv)
    s.sendall(("GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path).encode())
    socks.append(s)
t1=time.time()
ts=[]
for s in socks:
    got=0
    while got < 65536:
        got += len(s.recv(65536-got))
    ts.append(time.time()-t0)
print("sent all in %.3f s; first had 64K at %.3f, last at %.3f" % (t1-t0, ts[0], ts[-1]))
for s in socks: s.close()
