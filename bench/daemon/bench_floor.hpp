#pragma once
// The ZeroMQ floor the daemon benchmarks measure against: a bare ROUTER loop that unpacks each
// small msgpack request and packs a small reply, what any msgpack-over-ZeroMQ server pays.
// A one-byte "q" message stops it. Header-only: used by bench_daemon and bench_load.

#include <iterator>
#include <string>
#include <vector>

#include <zmq.hpp>
#include <zmq_addon.hpp>

#include "daemon/protocol.hpp"

namespace decodelab::daemon {

inline void serve_msgpack_echo(zmq::socket_t& router) {
  while (true) {
    std::vector<zmq::message_t> frames;
    if (!zmq::recv_multipart(router, std::back_inserter(frames))) continue;
    if (frames.size() == 2 && frames[1].size() == 1 && frames[1].data<char>()[0] == 'q') return;
    const Value request = unpack(frames[1].to_string_view());
    const std::string reply =
        pack(Value::Map{{"id", request.get("id")->as_int()}, {"type", "result"}, {"protocol", 1}});
    router.send(frames[0], zmq::send_flags::sndmore);
    router.send(zmq::buffer(reply), zmq::send_flags::none);
  }
}

}  // namespace decodelab::daemon
