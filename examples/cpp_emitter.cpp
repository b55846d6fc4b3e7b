// C++ use of libsioadapter: a small RAII wrapper around sio_emitter.
// Build: c++ -std=c++17 $(PKG_CONFIG_PATH=include pkg-config --cflags --libs sioadapter) examples/cpp_emitter.cpp
// Run:   LD_LIBRARY_PATH=target/release ./a.out [redis-url] [key] [room]
#include <cstdio>
#include <stdexcept>
#include <string>
#include <vector>

#include "sioadapter.h"

class Emitter {
 public:
  Emitter(const std::string& url, const std::string& key, const std::string& nsp) {
    check(sio_emitter_new(url.c_str(), key.c_str(), nsp.c_str(), &handle_));
  }
  ~Emitter() { sio_emitter_free(handle_); }
  Emitter(const Emitter&) = delete;
  Emitter& operator=(const Emitter&) = delete;

  void emit(const std::string& event, const std::string& args_json, const std::vector<std::string>& rooms = {}) {
    std::vector<const char*> names;
    for (const auto& r : rooms) names.push_back(r.c_str());
    sio_target target{names.data(), names.size(), nullptr, 0, 0};
    check(sio_emitter_emit(handle_, event.c_str(), args_json.c_str(), rooms.empty() ? nullptr : &target));
  }

  void flush(uint32_t timeout_ms) { check(sio_emitter_flush(handle_, timeout_ms)); }

 private:
  static void check(sio_result r) {
    if (r != SIO_OK) throw std::runtime_error(std::string(sio_result_name(r)) + ": " + sio_last_error());
  }
  sio_emitter* handle_ = nullptr;
};

int main(int argc, char** argv) {
  const std::string url = argc > 1 ? argv[1] : "redis://127.0.0.1:6379";
  const std::string key = argc > 2 ? argv[2] : "socket.io";
  const std::string room = argc > 3 ? argv[3] : "";
  try {
    Emitter emitter(url, key, "/");
    emitter.emit("from-cpp", "[\"hello from C++\", 17]", room.empty() ? std::vector<std::string>{} : std::vector<std::string>{room});
    emitter.flush(5000);
    std::printf("sent from-cpp (sioadapter %s)\n", sio_version());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
  return 0;
}
