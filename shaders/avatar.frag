#version 330 core
// Avatar fragment shader, linear lighting with sRGB output and a three-point light rig (key, fill,
// rim) fixed to the camera plus a hemispheric ambient. Variants (defined by the renderer):
//   SHADING 0: metallic-roughness (GGX specular) for glTF;
//           1: unlit (KHR_materials_unlit);
//           2: MToon-like toon shading for VRM (shade colour, toony ramp, parametric rim);
//   OUTLINE 1 or 2: the MToon outline (inverted hull) pass: flat outline colour;
//   HAS_TEXTURE, HAS_EMISSIVE_TEXTURE, HAS_SHADE_TEXTURE, HAS_MATCAP, ALPHA_MASK (0/1).
// Compile-time switches, not uniform branches: software rasterisers run both sides of a branch.

in vec3 v_normal;
in vec3 v_view_pos;
in vec2 v_uv;
in vec4 v_color;

uniform vec4 u_base_color;      // linear RGBA factor
#if HAS_TEXTURE
uniform sampler2D u_base_texture;  // sRGB texture: sampled values are linear
#endif
uniform float u_metallic;
uniform float u_roughness;
uniform vec3 u_emissive;         // emissive factor; x the emissive texture when there is one
#if HAS_EMISSIVE_TEXTURE
uniform sampler2D u_emissive_texture;
#endif
uniform float u_alpha_cutoff;   // MASK: fragments below it are discarded
uniform bool u_blend;           // BLEND: keep the alpha (else output is opaque)
uniform vec3 u_up;              // world up, in view space (for the hemispheric ambient)
#if SHADING == 2 || OUTLINE
uniform vec3 u_shade_color;     // MToon shade colour (linear)
uniform float u_toony;          // 0: smooth, 1: hard step
uniform float u_shift;          // moves the light/shade border
uniform vec3 u_rim_color;       // parametric rim colour (linear)
uniform float u_rim_power;
uniform float u_rim_lift;
uniform vec3 u_outline_color;
uniform float u_rim_mix;        // how much the lighting darkens the rim (0: not at all)
#endif
#if HAS_SHADE_TEXTURE
uniform sampler2D u_shade_texture;  // multiplied into the shade colour
#endif
#if HAS_MATCAP
uniform sampler2D u_matcap_texture;
uniform vec3 u_matcap_factor;
#endif

out vec4 f_color;

// Lights in view space (camera looks down -Z): direction toward the light, linear colour.
const vec3 KEY_DIR = vec3(-0.48, 0.52, 0.71);
const vec3 KEY_COLOR = vec3(2.35, 2.25, 2.10);
const vec3 FILL_DIR = vec3(0.70, 0.10, 0.70);
const vec3 FILL_COLOR = vec3(0.55, 0.60, 0.72);
const vec3 RIM_DIR = vec3(0.35, 0.45, -0.82);
const vec3 RIM_COLOR = vec3(1.30, 1.30, 1.40);
const vec3 SKY = vec3(0.30, 0.33, 0.38);
const vec3 GROUND = vec3(0.13, 0.11, 0.10);
const float PI = 3.14159265;

vec3 to_srgb(vec3 c) {
    c = clamp(c, 0.0, 1.0);
    return mix(c * 12.92, 1.055 * pow(c, vec3(1.0 / 2.4)) - 0.055, step(0.0031308, c));
}

// One light's diffuse + GGX specular (Schlick Fresnel, Smith-Schlick visibility).
vec3 shade(vec3 n, vec3 v, vec3 l, vec3 color, vec3 diffuse, vec3 f0, float a2) {
    float nl = max(dot(n, l), 0.0);
    vec3 h = normalize(l + v);
    float nh = max(dot(n, h), 0.0);
    float nv = max(dot(n, v), 1e-3);
    float d = a2 / (PI * pow(nh * nh * (a2 - 1.0) + 1.0, 2.0));
    float k = sqrt(a2) * 0.5;
    float vis = 0.25 / ((nl * (1.0 - k) + k) * (nv * (1.0 - k) + k));
    vec3 f = f0 + (1.0 - f0) * pow(1.0 - max(dot(v, h), 0.0), 5.0);
    return color * nl * (diffuse / PI + d * vis * f);
}

void main() {
    vec4 base = u_base_color * v_color;
#if HAS_TEXTURE
    base *= texture(u_base_texture, v_uv);
#endif
#if ALPHA_MASK
    if (base.a < u_alpha_cutoff) discard;
#endif
    float alpha = u_blend ? base.a : 1.0;
    vec3 emissive = u_emissive;
#if HAS_EMISSIVE_TEXTURE
    emissive *= texture(u_emissive_texture, v_uv).rgb;
#endif

#if OUTLINE
    f_color = vec4(to_srgb(u_outline_color * 0.6 + u_outline_color * base.rgb * 0.4), alpha);
#elif SHADING == 1
    f_color = vec4(to_srgb(base.rgb + emissive), alpha);
#else
    vec3 n = normalize(v_normal);
    if (!gl_FrontFacing) n = -n;  // double-sided materials: light the back face too
    vec3 v = normalize(-v_view_pos);
    vec3 ambient = mix(GROUND, SKY, 0.5 + 0.5 * dot(n, u_up));
#if SHADING == 2
    // MToon: a two-tone ramp between the shade and the lit colour, lit by the key light; the fill
    // and ambient lift the shade side; parametric rim plus the rig's rim light.
    float lambert = dot(n, normalize(KEY_DIR)) + u_shift;
    float ramp = smoothstep(-1.0 + u_toony, 1.0 - u_toony + 1e-3, lambert);
    vec3 shade_color = u_shade_color;
#if HAS_SHADE_TEXTURE
    shade_color *= texture(u_shade_texture, v_uv).rgb;
#endif
    vec3 lit = mix(shade_color, base.rgb, ramp);
    vec3 color = lit * 0.92 + base.rgb * (ambient * 0.9 + FILL_COLOR * 0.18 * max(dot(n, normalize(FILL_DIR)), 0.0));
    float fresnel = pow(clamp(1.0 - max(dot(n, v), 0.0) + u_rim_lift, 0.0, 1.0), max(u_rim_power, 1e-3));
    vec3 rim = u_rim_color * fresnel;
#if HAS_MATCAP
    // view-space normal to matcap UV; glTF's v runs down the image
    rim += u_matcap_factor * texture(u_matcap_texture, vec2(n.x, -n.y) * 0.495 + 0.5).rgb;
#endif
    color += rim * mix(vec3(1.0), vec3(ramp * 0.92) + ambient * 0.9, u_rim_mix);
    float edge = pow(1.0 - max(dot(n, v), 0.0), 4.0);
    color += RIM_COLOR * 0.25 * edge * max(dot(n, normalize(RIM_DIR)) + 0.5, 0.0) * base.rgb;
    color += emissive;
#else
    float rough = clamp(u_roughness, 0.05, 1.0);
    float a2 = pow(rough * rough, 2.0);
    vec3 diffuse = base.rgb * (1.0 - u_metallic);
    vec3 f0 = mix(vec3(0.04), base.rgb, u_metallic);

    vec3 color = shade(n, v, normalize(KEY_DIR), KEY_COLOR, diffuse, f0, a2)
               + shade(n, v, normalize(FILL_DIR), FILL_COLOR, diffuse, f0, a2);
    // rim: a soft Fresnel-shaped light from behind that outlines the silhouette
    float edge = pow(1.0 - max(dot(n, v), 0.0), 3.0);
    color += RIM_COLOR * edge * max(dot(n, normalize(RIM_DIR)) + 0.5, 0.0) * (diffuse + f0) * 0.6;
    color += ambient * (diffuse + f0 * (1.0 - rough * 0.5));
    color += emissive;
#endif
    f_color = vec4(to_srgb(color), alpha);
#endif
}
