#include "models/tokenizers/vocabulary.h"

#include <algorithm>
#include <cstdint>

#include "core/error.h"

namespace zeroth {

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

std::optional<uint8_t> parse_byte_piece(std::string_view piece) {
  if (piece.size() != 6 || piece.substr(0, 3) != "<0x" || piece[5] != '>') return std::nullopt;
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  int hi = hex(piece[3]), lo = hex(piece[4]);
  if (hi < 0 || lo < 0) return std::nullopt;
  return static_cast<uint8_t>(hi * 16 + lo);
}

Vocabulary::Vocabulary(const TokenizerSpec& spec) : pieces_(spec.pieces) {
  const int32_t n = size();
  types_.resize(n, TokenType::kNormal);
  if (!spec.types.empty()) {
    for (int32_t i = 0; i < n; ++i) types_[i] = static_cast<TokenType>(spec.types[i]);
  } else {
    for (int32_t i = 0; i < n; ++i) {
      if (parse_byte_piece(pieces_[i])) types_[i] = TokenType::kByte;
    }
    if (spec.unk >= 0) types_[spec.unk] = TokenType::kUnknown;
    for (int32_t id : {spec.bos, spec.eos}) {
      if (id >= 0) types_[id] = TokenType::kControl;
    }
  }
  index_.reserve(n);
  // First occurrence wins: a few converted vocabularies repeat a piece, and the lower id is
  // the one the model was trained to see.
  for (int32_t i = 0; i < n; ++i) index_.emplace(pieces_[i], i);

  if (spec.parse_special) {
    for (int32_t i = 0; i < n; ++i) {
      const TokenType t = types_[i];
      if ((t == TokenType::kControl || t == TokenType::kUserDefined) && !pieces_[i].empty()) {
        specials_.push_back(i);
        special_first_byte_[static_cast<unsigned char>(pieces_[i][0])] = true;
      }
    }
    std::stable_sort(specials_.begin(), specials_.end(), [&](int32_t a, int32_t b) {
      return pieces_[a].size() > pieces_[b].size();
    });
  }
}

const std::string& Vocabulary::piece(int32_t id) const {
  ZEROTH_CHECK(id >= 0 && id < size(), "token id {} is outside the vocabulary of {} tokens", id,
               size());
  return pieces_[id];
}

TokenType Vocabulary::type(int32_t id) const {
  ZEROTH_CHECK(id >= 0 && id < size(), "token id {} is outside the vocabulary of {} tokens", id,
               size());
  return types_[id];
}

std::optional<int32_t> Vocabulary::find(std::string_view piece) const {
  auto it = index_.find(piece);
  if (it == index_.end()) return std::nullopt;
  return it->second;
}

std::vector<TextSegment> Vocabulary::split_special(std::string_view text) const {
  std::vector<TextSegment> out;
  if (specials_.empty()) {
    if (!text.empty()) out.push_back({text, -1});
    return out;
  }
  size_t plain_start = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    int32_t hit = -1;
    if (special_first_byte_[static_cast<unsigned char>(text[pos])]) {
      for (int32_t id : specials_) {
        const std::string& p = pieces_[id];
        if (text.compare(pos, p.size(), p) == 0) {
          hit = id;
          break;  // longest first, so the first hit is the longest
        }
      }
    }
    if (hit < 0) {
      ++pos;
      continue;
    }
    if (pos > plain_start) out.push_back({text.substr(plain_start, pos - plain_start), -1});
    out.push_back({text.substr(pos, pieces_[hit].size()), hit});
    pos += pieces_[hit].size();
    plain_start = pos;
  }
  if (pos > plain_start) out.push_back({text.substr(plain_start, pos - plain_start), -1});
  return out;
}

}  // namespace zeroth
