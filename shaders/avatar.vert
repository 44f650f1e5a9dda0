#version 330 core
// Avatar vertex shader. The renderer compiles one variant per SKIN_INFLUENCES value:
//   0: rigid (node world matrix), 1, 2 or 4: linear-blend skinning with that many joints.
// Joint matrices come from an RGBA32F texture (4 texels = the 4 columns of one matrix), which is
// cheaper than a dynamically indexed uniform array on software rasterisers and has no small
// joint limit. OUTLINE (0/1) builds the MToon inverted-hull outline pass. Morph targets are applied on the CPU before upload (see engine/render/renderer.py).

in vec3 in_position;
in vec3 in_normal;
in vec2 in_uv;
in vec4 in_color;
in uvec4 in_joints;
in vec4 in_weights;

uniform mat4 u_view;
uniform mat4 u_proj;
uniform vec4 u_uv_transform;  // KHR_texture_transform / VRM texture binds: offset.xy, scale.zw
#if OUTLINE
uniform float u_outline_width;  // OUTLINE 1: metres along the normal; 2: fraction of the frame height
#endif
#if SKIN_INFLUENCES > 0
uniform sampler2D u_joint_texture;  // joint world * inverse bind, one matrix per 4 texels

mat4 joint_matrix(uint index) {
    int x = int(index) * 4;
    return mat4(texelFetch(u_joint_texture, ivec2(x, 0), 0), texelFetch(u_joint_texture, ivec2(x + 1, 0), 0),
                texelFetch(u_joint_texture, ivec2(x + 2, 0), 0), texelFetch(u_joint_texture, ivec2(x + 3, 0), 0));
}
#else
uniform mat4 u_model;          // node world matrix
uniform mat3 u_normal_matrix;  // inverse-transpose of view * model
#endif

out vec3 v_normal;    // view space
out vec3 v_view_pos;  // view space
out vec2 v_uv;
out vec4 v_color;

void main() {
#if SKIN_INFLUENCES > 0
    mat4 skin = in_weights.x * joint_matrix(in_joints.x);
#if SKIN_INFLUENCES > 1
    skin += in_weights.y * joint_matrix(in_joints.y);
#endif
#if SKIN_INFLUENCES > 2
    skin += in_weights.z * joint_matrix(in_joints.z) + in_weights.w * joint_matrix(in_joints.w);
#endif
    vec4 world = skin * vec4(in_position, 1.0);
    v_normal = mat3(u_view) * (mat3(skin) * in_normal);
#else
    vec4 world = u_model * vec4(in_position, 1.0);
    v_normal = u_normal_matrix * in_normal;
#endif
    vec4 view = u_view * world;
#if OUTLINE == 1
    // world width; the hull grows with distance a little, so the line keeps its width on screen
    // (a zero normal, as some exports have on seams, pushes nothing instead of going to infinity)
    view.xyz += v_normal / max(length(v_normal), 1e-6) * u_outline_width * clamp(-view.z, 0.5, 2.0);
#endif
    v_view_pos = view.xyz;
    v_uv = in_uv * u_uv_transform.zw + u_uv_transform.xy;
    v_color = in_color;
    gl_Position = u_proj * view;
#if OUTLINE == 2
    // screen width: push the clip-space position along the projected normal by a fraction of the
    // frame height (NDC spans 2), corrected for the aspect ratio
    vec2 dir = (mat3(u_proj) * v_normal).xy;
    dir = dir / max(length(dir), 1e-6) * vec2(abs(u_proj[0][0] / u_proj[1][1]), 1.0);
    gl_Position.xy += dir * 2.0 * u_outline_width * gl_Position.w;
#endif
}
