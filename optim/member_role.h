// What a member computes each step. All three send the same one-byte records
// into the same ledger; gradient and JVP records are exact projections
// ⟨∇L, z⟩ (RecordKind::Gradient) and may own more slots (roles.grad_slots).
// The numeric values travel on the wire (the elastic Ready message).
#pragma once
#include <cstdint>

namespace zeroth {

enum class MemberRole : uint8_t {
  Zo = 0,    // zeroth-order differences (optim/zo_step.h)
  Grad = 1,  // backward + exact projections (optim/grad_step.h)
  Jvp = 2,   // forward-mode exact projections, no stored activations (optim/jvp_step.h)
};
constexpr uint8_t kMaxMemberRole = 2;

inline const char* member_role_name(MemberRole r) {
  switch (r) {
    case MemberRole::Grad: return "grad";
    case MemberRole::Jvp: return "jvp";
    case MemberRole::Zo: break;
  }
  return "zo";
}

}  // namespace zeroth
